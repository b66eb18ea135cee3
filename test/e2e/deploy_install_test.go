package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/test/e2e/harness"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestDeployInstallRequirements holds the chart and the kustomize base to
// what an install must be: no default cluster id (rendering fails without
// one, with a message saying what to set), only its own namespace
// imagegate-system and kube-system exempt, an audit sink on by default, RBAC
// for the Events and PolicyReport sinks when they are turned on, and
// NOTES that show how to check enforcement and what the failure policy means.
func TestDeployInstallRequirements(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(root, "deploy", "helm", "imagegate")

	t.Run("kustomize base without a cluster id does not build", func(t *testing.T) {
		// A copy of deploy/ without cluster.env, whatever the worktree has.
		dir := t.TempDir()
		if out, err := exec.Command("cp", "-r", filepath.Join(root, "deploy"), dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		base := filepath.Join(dir, "deploy", "kustomize", "base")
		_ = os.Remove(filepath.Join(base, "cluster.env"))
		if _, err := buildKustomize(base); err == nil || !strings.Contains(err.Error(), "cluster.env") {
			t.Fatalf("kustomize build without cluster.env: %v, want an error naming cluster.env", err)
		}
		if _, err := buildKustomize(filepath.Join(dir, "deploy", "kustomize", "overlays", "cert-manager")); err == nil {
			t.Error("the cert-manager overlay builds without a cluster id")
		}
		if err := os.WriteFile(filepath.Join(base, "cluster.env"), []byte("cluster-id=prod-7\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		objs := renderKustomize(t, base)
		var cm *unstructured.Unstructured
		for _, o := range objs {
			if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), "imagegate") {
				cm = o
			}
		}
		if cm == nil || cm.GetNamespace() != "imagegate-system" {
			t.Fatalf("no ConfigMap with the cluster id in imagegate-system: %v", cm)
		}
		if id, _, _ := unstructured.NestedString(cm.Object, "data", "cluster-id"); id != "prod-7" {
			t.Errorf("cluster-id %q, want prod-7", id)
		}
		d := find(objs, "Deployment", "imagegate")
		cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		if !strings.Contains(strings.Join(stringsOf(cs[0].(map[string]any)["env"]), " "), cm.GetName()) {
			t.Errorf("Deployment does not read CLUSTER_ID from ConfigMap %s", cm.GetName())
		}
		for _, o := range objs {
			if ns := o.GetNamespace(); ns != "" && ns != "imagegate-system" {
				t.Errorf("%s %s in namespace %s, want imagegate-system", o.GetKind(), o.GetName(), ns)
			}
		}
	})

	helm := helmBinary(t)
	template := func(ns string, set ...string) (string, error) {
		args := []string{"template", "imagegate", chart, "--namespace", ns}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		out, err := exec.Command(helm, args...).CombinedOutput()
		return string(out), err
	}

	t.Run("helm without a cluster id does not render", func(t *testing.T) {
		out, err := template("imagegate-system")
		if err == nil || !strings.Contains(out, "clusterId is required") || !strings.Contains(out, "--set clusterId=") {
			t.Errorf("helm template without clusterId: %v\n%s", err, out)
		}
	})

	t.Run("helm into default does not render", func(t *testing.T) {
		out, err := template("default", "clusterId=c1")
		if err == nil || !strings.Contains(out, `install imagegate into its own namespace "imagegate-system"`) {
			t.Errorf("helm template --namespace default: %v\n%s", err, out)
		}
	})

	t.Run("helm exempts only imagegate-system and kube-system", func(t *testing.T) {
		out, err := template("imagegate-system", "clusterId=c1")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		objs := splitYAML(t, []byte(out))
		checkExemptions(t, objs, []any{"kube-system", "imagegate-system"})
		for _, o := range objs {
			if ns := o.GetNamespace(); ns != "" && ns != "imagegate-system" {
				t.Errorf("%s %s in namespace %s", o.GetKind(), o.GetName(), ns)
			}
		}
		role := find(objs, "ClusterRole", "imagegate")
		if r := strings.ToLower(strings.Join(stringsOf(role.Object["rules"]), " ")); strings.Contains(r, "events") || strings.Contains(r, "policyreports") {
			t.Errorf("default ClusterRole already writes Events or PolicyReports: %v", role.Object["rules"])
		}
		if args := containerArgs(t, find(objs, "Deployment", "imagegate")); !slices.Contains(args, "--audit-log=-") {
			t.Errorf("no audit sink on by default: %q", args)
		}
	})

	t.Run("helm audit sinks bring their RBAC", func(t *testing.T) {
		out, err := template("imagegate-system", "clusterId=c1", "audit.kubeEvents=true", "audit.policyReports=true", "audit.log=false")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		objs := splitYAML(t, []byte(out))
		args := containerArgs(t, find(objs, "Deployment", "imagegate"))
		if !slices.Contains(args, "--audit-kube-events") || !slices.Contains(args, "--audit-policy-reports") || slices.Contains(args, "--audit-log=-") {
			t.Errorf("args %q", args)
		}
		rules, _, _ := unstructured.NestedSlice(find(objs, "ClusterRole", "imagegate").Object, "rules")
		want := map[string]string{"events": "[create update]", "policyreports": "[get create update]"}
		for _, r := range rules {
			rm := r.(map[string]any)
			for _, res := range stringsOf(rm["resources"]) {
				if v, ok := want[res]; ok && strings.Join(stringsOf(rm["verbs"]), " ") == strings.Trim(v, "[]") {
					delete(want, res)
				}
			}
		}
		if len(want) > 0 {
			t.Errorf("ClusterRole lacks %v: %v", want, rules)
		}
	})

	t.Run("helm NOTES", func(t *testing.T) {
		cluster := harness.SharedCluster(t)
		kubeconfig := cluster.WriteKubeconfig(t)
		out, err := exec.Command(helm, "install", "imagegate", chart, "--namespace", "imagegate-system", "--set", "clusterId=c1",
			"--dry-run=client", "--kubeconfig", kubeconfig).CombinedOutput()
		if err != nil {
			t.Fatalf("helm install --dry-run: %v\n%s", err, out)
		}
		notes := string(out[strings.Index(string(out), "NOTES:"):])
		for _, want := range []string{
			"kubectl run imagegate-install-check --image=imagegate-install-check:1 --dry-run=server",
			`denied the request`,
			"Failure policy: Fail.",
			"REFUSES pods and pod controllers in every enforced namespace",
			"kube-system, imagegate-system",
			`grep '"type":"admission"'`,
		} {
			if !strings.Contains(notes, want) {
				t.Errorf("NOTES lack %q:\n%s", want, notes)
			}
		}
	})
}

// checkExemptions asserts the pod webhook's namespaceSelector exempts
// exactly these namespaces.
func checkExemptions(t *testing.T, objs []*unstructured.Unstructured, want []any) {
	t.Helper()
	vwc := find(objs, "ValidatingWebhookConfiguration", "imagegate.dev")
	if vwc == nil {
		t.Fatal("no ValidatingWebhookConfiguration")
	}
	whs, _, _ := unstructured.NestedSlice(vwc.Object, "webhooks")
	values, _, _ := unstructured.NestedSlice(whs[0].(map[string]any), "namespaceSelector", "matchExpressions")
	if len(values) != 1 || !slices.Equal(stringsOf(values[0].(map[string]any)["values"]), stringsOf(want)) {
		t.Errorf("exempt namespaces %v, want %v", values, want)
	}
}

// stringsOf flattens a decoded YAML value's strings.
func stringsOf(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringsOf(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range x {
			out = append(out, stringsOf(e)...)
		}
		return out
	}
	return nil
}
