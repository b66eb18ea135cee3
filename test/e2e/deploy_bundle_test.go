package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/test/e2e/harness"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/restmapper"
)

// containerSpec is a Deployment's first container.
func containerSpec(t *testing.T, d *unstructured.Unstructured) map[string]any {
	t.Helper()
	if d == nil {
		t.Fatal("no Deployment")
	}
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) == 0 {
		t.Fatalf("Deployment %s has no containers", d.GetName())
	}
	return cs[0].(map[string]any)
}

// checkBundleDeployment asserts that d reads its policies from ref, verified
// with the key of secretName mounted where --policy-key reads it, and that no
// validating webhook for the imagegate.dev resources (which are not read)
// is left.
func checkBundleDeployment(t *testing.T, objs []*unstructured.Unstructured, refArg, keySecret string) {
	t.Helper()
	d := find(objs, "Deployment", "imagegate")
	c := containerSpec(t, d)
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for _, want := range []string{refArg, "--policy-key=/etc/imagegate/policy-key/cosign.pub"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}
	if slices.Contains(args, "--policy-source=kube") {
		t.Errorf("args %q still read the imagegate.dev resources", args)
	}
	vols, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	if !strings.Contains(fmt.Sprint(vols), "secretName:"+keySecret) {
		t.Errorf("no volume from Secret %s: %v", keySecret, vols)
	}
	if vwc := find(objs, "ValidatingWebhookConfiguration", "imagegate.dev"); vwc == nil || strings.Contains(fmt.Sprint(vwc.Object["webhooks"]), "/validate-policy") {
		t.Errorf("the imagegate.dev webhook is missing or still validates the policy resources: %v", vwc)
	}
}

// checkStoreFromSecret asserts that --store comes from the Secret's key
// through an environment variable, never as a literal URL.
func checkStoreFromSecret(t *testing.T, d *unstructured.Unstructured, secret, key string) {
	t.Helper()
	c := containerSpec(t, d)
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	if !slices.Contains(args, "--store=$(IMAGEGATE_STORE)") {
		t.Errorf("args %q: no --store=$(IMAGEGATE_STORE)", args)
	}
	env, _, _ := unstructured.NestedSlice(c, "env")
	want := fmt.Sprintf("secretKeyRef:map[key:%s name:%s]", key, secret)
	if !strings.Contains(fmt.Sprint(env), want) {
		t.Errorf("env %v: IMAGEGATE_STORE not from %s", env, want)
	}
}

// TestDeployPolicyBundle renders the chart and the kustomize overlay for a
// policy bundle and an external PostgreSQL, checks what serve is told, has
// the API server validate the objects (dry run), and checks that the chart
// refuses a bundle without its key.
func TestDeployPolicyBundle(t *testing.T) {
	cluster := harness.SharedCluster(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dyn := cluster.ApplyPolicies(t)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memCache(cluster.Client(t).Discovery()))
	ref := "oci://registry.example.com/imagegate/policies:prod"
	namespace := []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: imagegate-bundle}\n---\n")

	t.Run("helm chart", func(t *testing.T) {
		objs := helmTemplate(t, "imagegate-bundle", "clusterId=e2e-cluster", "policyBundle.ref="+ref, "policyBundle.keySecret=bundle-key",
			"policyBundle.pollInterval=1m", "policyBundle.pullSecret=regcred", "postgres.urlSecret=imagegate-db", "postgres.urlKey=dsn")
		checkBundleDeployment(t, objs, "--policy-source="+ref, "bundle-key")
		d := find(objs, "Deployment", "imagegate")
		checkStoreFromSecret(t, d, "imagegate-db", "dsn")
		c := containerSpec(t, d)
		args, _, _ := unstructured.NestedStringSlice(c, "args")
		if !slices.Contains(args, "--policy-poll-interval=1m") {
			t.Errorf("args %q: no --policy-poll-interval=1m", args)
		}
		if env, _, _ := unstructured.NestedSlice(c, "env"); !strings.Contains(fmt.Sprint(env), "DOCKER_CONFIG") {
			t.Errorf("policyBundle.pullSecret: no DOCKER_CONFIG in %v", env)
		}
		var all []*unstructured.Unstructured
		all = append(all, splitYAML(t, namespace)...)
		dryRunApply(t, dyn, mapper, append(all, objs...))
	})

	t.Run("helm chart refuses a bundle without its key", func(t *testing.T) {
		for _, set := range [][]string{
			{"policyBundle.ref=" + ref},
			{"policyBundle.ref=" + ref, "policyBundle.keySecret=a", "policyBundle.keyConfigMap=b"},
			{"policyBundle.ref=registry.example.com/p:prod", "policyBundle.keySecret=a"},
			{"policyBundle.ref=" + ref, "policyBundle.keySecret=a", "api.enabled=true"},
		} {
			args := []string{"template", "imagegate", filepath.Join(root, "deploy", "helm", "imagegate"), "--namespace", "imagegate-system", "--set", "clusterId=c"}
			for _, s := range set {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(helmBinary(t), args...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "policyBundle") {
				t.Errorf("helm template --set %v: %v\n%s", set, err, out)
			}
		}
	})

	t.Run("kustomize overlay", func(t *testing.T) {
		objs := renderKustomize(t, filepath.Join(root, "deploy", "kustomize", "overlays", "policy-bundle"))
		checkBundleDeployment(t, objs, "--policy-source=$(POLICY_BUNDLE_REF)", "imagegate-policy-key")
		if env, _, _ := unstructured.NestedSlice(containerSpec(t, find(objs, "Deployment", "imagegate")), "env"); !strings.Contains(fmt.Sprint(env), "name:imagegate-policy-bundle") {
			t.Errorf("POLICY_BUNDLE_REF not from ConfigMap imagegate-policy-bundle: %v", env)
		}
		dryRunApply(t, dyn, mapper, objs)
	})

	t.Run("kustomize postgres component", func(t *testing.T) {
		dir := t.TempDir()
		rel := func(p string) string {
			r, err := filepath.Rel(dir, filepath.Join(root, "deploy", "kustomize", p))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%s]\ncomponents: [%s, %s]\n",
			rel("base"), rel("components/policy-bundle"), rel("components/postgres"))
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		objs := renderKustomize(t, dir)
		checkStoreFromSecret(t, find(objs, "Deployment", "imagegate"), "imagegate-postgres", "url")
		checkBundleDeployment(t, objs, "--policy-source=$(POLICY_BUNDLE_REF)", "imagegate-policy-key")
	})

	t.Run("kustomize runtime-compliance component", func(t *testing.T) {
		dir := t.TempDir()
		rel := func(p string) string {
			r, err := filepath.Rel(dir, filepath.Join(root, "deploy", "kustomize", p))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%s]\ncomponents: [%s]\n",
			rel("base"), rel("components/runtime-compliance"))
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		objs := renderKustomize(t, dir)
		args, _, _ := unstructured.NestedStringSlice(containerSpec(t, find(objs, "Deployment", "imagegate")), "args")
		if !slices.Contains(args, "--runtime-compliance") {
			t.Errorf("no --runtime-compliance: %q", args)
		}
		role := find(objs, "Role", "imagegate-runtime")
		if role == nil || role.GetNamespace() != "imagegate-system" || !strings.Contains(fmt.Sprint(role.Object["rules"]), "leases") {
			t.Errorf("no Lease Role in imagegate-system: %v", role)
		}
		if cr := find(objs, "ClusterRole", "imagegate-runtime"); cr == nil || !strings.Contains(fmt.Sprint(cr.Object["rules"]), "replicasets") {
			t.Errorf("no ClusterRole for the inventory: %v", cr)
		}
		dryRunApply(t, dyn, mapper, objs)
	})
}
