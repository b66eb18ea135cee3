package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/test/e2e/harness"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// TestDeployKustomizeAPI: the same for deploy/kustomize/overlays/api (the
// base with components/api), and the component on top of the cert-manager
// overlay puts the API Service into the serving Certificate.
func TestDeployKustomizeAPI(t *testing.T) {
	cluster := harness.SharedCluster(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memCache(cluster.Client(t).Discovery()))
	harness.ApplyCRDs(t, dyn)
	const ns = "imagegate-system"

	objs := renderKustomize(t, filepath.Join(root, "deploy", "kustomize", "overlays", "api"))
	apiDeploy := find(objs, "Deployment", "imagegate-api")
	if apiDeploy == nil {
		t.Fatal("overlays/api renders no Deployment imagegate-api")
	}
	args := containerArgs(t, apiDeploy)
	t.Run("rendered objects", func(t *testing.T) {
		for _, a := range []string{"--api-listen=:9443", "--api-state=/var/lib/imagegate/iam.json", "--api-token-review", "--api-tokens=/etc/imagegate/api-tokens/tokens.csv"} {
			if !slices.Contains(args, a) {
				t.Errorf("API Deployment args %q lack %s", args, a)
			}
		}
		if w := policyWriters(objs); len(w) != 1 || !slices.Equal(w["imagegate-api"], []string{"attestors", "binarysecuritypolicies", "opastrategies"}) {
			t.Errorf("ClusterRoles writing policy objects: %v, want only imagegate-api on the three kinds", w)
		}
		for _, o := range objs {
			if strings.HasPrefix(o.GetName(), "imagegate-api") && o.GetKind() != "ClusterRole" && o.GetKind() != "ClusterRoleBinding" && o.GetNamespace() != ns {
				t.Errorf("%s %s in namespace %q, want %s", o.GetKind(), o.GetName(), o.GetNamespace(), ns)
			}
		}
		if webhookArgs := strings.Join(containerArgs(t, find(objs, "Deployment", "imagegate")), " "); !strings.Contains(webhookArgs, "imagegate-api.$(POD_NAMESPACE).svc") {
			t.Errorf("the bootstrapped serving certificate does not name the API Service: %s", webhookArgs)
		}
	})
	t.Run("the API server accepts every object", func(t *testing.T) {
		dryRunApply(t, dyn, mapper, objs)
		t.Logf("%d objects validated by the API server", len(objs))
	})
	t.Run("with the cert-manager overlay", func(t *testing.T) {
		dir := t.TempDir()
		rel, err := filepath.Rel(dir, filepath.Join(root, "deploy", "kustomize"))
		if err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%s/overlays/cert-manager]\ncomponents: [%s/components/api]\n", rel, rel)
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		objs := renderKustomize(t, dir)
		cert := find(objs, "Certificate", "imagegate-serving")
		if cert == nil {
			t.Fatal("no serving Certificate")
		}
		names, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
		if !slices.Contains(names, "imagegate-api.imagegate-system.svc") {
			t.Errorf("serving Certificate dnsNames %v lack imagegate-api.imagegate-system.svc", names)
		}
		if find(objs, "Deployment", "imagegate-api") == nil {
			t.Error("no Deployment imagegate-api")
		}
	})
	t.Run("imagegate with the API Deployment's args and RBAC", func(t *testing.T) {
		for _, o := range objs {
			switch {
			case o.GetKind() == "Namespace",
				o.GetKind() == "ServiceAccount" && o.GetName() == "imagegate-api",
				o.GetKind() == "ClusterRole" && o.GetName() == "imagegate-api",
				o.GetKind() == "ClusterRoleBinding" && o.GetName() == "imagegate-api":
				applyForReal(t, dyn, mapper, o)
			}
		}
		// What the kubelet expands from the container's env.
		r := strings.NewReplacer("$(CLUSTER_ID)", clusterID, "$(POD_NAMESPACE)", ns)
		expanded := make([]string, len(args))
		for i, a := range args {
			expanded[i] = r.Replace(a)
		}
		runAPIFromArgs(t, cluster, dyn, ns, expanded)
	})
}
