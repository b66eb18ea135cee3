package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// renderKustomize builds a kustomization directory with the kustomize
// library (what kubectl apply -k runs), with the base's required cluster.env
// (cluster id e2e-cluster) written for the build when it is missing.
func renderKustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(root, "deploy", "kustomize", "base", "cluster.env")
	if _, err := os.Stat(env); os.IsNotExist(err) {
		if err := os.WriteFile(env, []byte("cluster-id="+clusterID+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(env)
	}
	res, err := buildKustomize(dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return splitYAML(t, out)
}

func buildKustomize(dir string) (interface{ AsYaml() ([]byte, error) }, error) {
	return krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
}

func splitYAML(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 || bytes.Equal(bytes.TrimSpace(doc), []byte("---")) {
			continue
		}
		u := harness.DecodeYAML(t, string(doc))
		if len(u.Object) == 0 {
			continue
		}
		objs = append(objs, u)
	}
	return objs
}

// dryRunApply server-side applies every object with dryRun=All and strict
// field validation, so the API server checks each against its schema
// without keeping it. Namespaces are applied for real first (a namespaced
// dry run needs its namespace).
func dryRunApply(t *testing.T, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	for _, pass := range []bool{true, false} {
		for _, o := range objs {
			if (o.GetKind() == "Namespace") != pass {
				continue
			}
			gvk := o.GroupVersionKind()
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Errorf("%s %s: no such resource in the API server: %v", gvk, o.GetName(), err)
				continue
			}
			data, err := o.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			opts := metav1.PatchOptions{FieldManager: "e2e", Force: ptr(true), FieldValidation: "Strict"}
			if !pass {
				opts.DryRun = []string{metav1.DryRunAll}
			}
			var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
			if o.GetNamespace() != "" {
				ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
			}
			if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts); err != nil {
				t.Errorf("server-side dry-run apply of %s %s/%s: %v", gvk.Kind, o.GetNamespace(), o.GetName(), err)
			}
		}
	}
}

// helmVersion is the helm release the chart is tested with.
const helmVersion = "v3.19.0"

func ptr[T any](v T) *T { return &v }

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return o
		}
	}
	return nil
}

// checkManifests asserts what the installation must be: complete, hardened,
// failing closed, and exempting only kube-system and its own namespace.
func checkManifests(t *testing.T, objs []*unstructured.Unstructured, ns string) {
	t.Helper()
	str := func(o *unstructured.Unstructured, path ...string) string {
		v, _, _ := unstructured.NestedFieldNoCopy(o.Object, path...)
		return fmt.Sprint(v)
	}
	for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "PodDisruptionBudget", "Deployment"} {
		if find(objs, kind, "") == nil {
			t.Errorf("no %s rendered", kind)
		}
	}
	crds := 0
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds++
		}
	}
	if crds != 3 {
		t.Errorf("%d CRDs rendered, want 3", crds)
	}
	d := find(objs, "Deployment", "")
	if d != nil {
		checks := map[string][2]string{
			"replicas":             {str(d, "spec", "replicas"), "2"},
			"runAsNonRoot":         {str(d, "spec", "template", "spec", "securityContext", "runAsNonRoot"), "true"},
			"anti-affinity":        {fmt.Sprint(str(d, "spec", "template", "spec", "affinity", "podAntiAffinity") != "<nil>"), "true"},
			"namespace":            {d.GetNamespace(), ns},
			"serviceAccount":       {fmt.Sprint(str(d, "spec", "template", "spec", "serviceAccountName") != ""), "true"},
			"terminationGracePer.": {str(d, "spec", "template", "spec", "terminationGracePeriodSeconds"), "30"},
		}
		cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		if len(cs) == 1 {
			c := &unstructured.Unstructured{Object: cs[0].(map[string]any)}
			checks["readOnlyRootFilesystem"] = [2]string{str(c, "securityContext", "readOnlyRootFilesystem"), "true"}
			checks["allowPrivilegeEscalation"] = [2]string{str(c, "securityContext", "allowPrivilegeEscalation"), "false"}
			checks["limits.memory"] = [2]string{str(c, "resources", "limits", "memory"), "512Mi"}
			checks["requests.cpu"] = [2]string{str(c, "resources", "requests", "cpu"), "100m"}
			checks["readinessProbe"] = [2]string{str(c, "readinessProbe", "httpGet", "path"), "/readyz"}
		} else {
			t.Errorf("deployment has %d containers", len(cs))
		}
		for name, c := range checks {
			if c[0] != c[1] {
				t.Errorf("Deployment %s = %s, want %s", name, c[0], c[1])
			}
		}
	}
	vwc := find(objs, "ValidatingWebhookConfiguration", "imagegate.dev")
	if vwc == nil {
		t.Fatal("no ValidatingWebhookConfiguration imagegate.dev rendered")
	}
	whs, _, _ := unstructured.NestedSlice(vwc.Object, "webhooks")
	if len(whs) != 2 {
		t.Fatalf("%d webhooks, want 2 (pods and imagegate.dev objects)", len(whs))
	}
	for _, w := range whs {
		wh := &unstructured.Unstructured{Object: w.(map[string]any)}
		if str(wh, "failurePolicy") != "Fail" || str(wh, "timeoutSeconds") != "10" || str(wh, "sideEffects") != "None" {
			t.Errorf("webhook %s: failurePolicy %s timeoutSeconds %s sideEffects %s; want Fail, 10, None",
				str(wh, "name"), str(wh, "failurePolicy"), str(wh, "timeoutSeconds"), str(wh, "sideEffects"))
		}
		if str(wh, "clientConfig", "service", "namespace") != ns {
			t.Errorf("webhook %s calls namespace %s, want %s", str(wh, "name"), str(wh, "clientConfig", "service", "namespace"), ns)
		}
	}
	if sa := find(objs, "Role", ""); sa == nil {
		t.Error("no Role for the certificate bootstrap's Secret")
	}
	pods := &unstructured.Unstructured{Object: whs[0].(map[string]any)}
	exprs, _, _ := unstructured.NestedSlice(pods.Object, "namespaceSelector", "matchExpressions")
	want := []any{map[string]any{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": []any{"kube-system", ns}}}
	if !reflect.DeepEqual(exprs, want) {
		t.Errorf("namespaceSelector %v, want exactly kube-system and %s exempt", exprs, ns)
	}
	if d == nil {
		return
	}
	if cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers"); len(cs) > 0 {
		if args, _, _ := unstructured.NestedStringSlice(cs[0].(map[string]any), "args"); !slices.Contains(args, "--audit-log=-") {
			t.Errorf("Deployment args %q: no audit sink on by default (--audit-log=-)", args)
		}
	}
	checkPinning(t, objs, pods)
}

// checkPinning asserts the digest pinning webhook: Pods only (never
// controllers' templates), reinvoked for later webhooks' sidecars, with the
// validating pod webhook's failure policy, timeout and exemptions plus the
// per-namespace opt-out label, and the RBAC and flag that keep its caBundle.
func checkPinning(t *testing.T, objs []*unstructured.Unstructured, validating *unstructured.Unstructured) {
	t.Helper()
	mwc := find(objs, "MutatingWebhookConfiguration", "imagegate.dev")
	if mwc == nil {
		t.Fatal("no MutatingWebhookConfiguration imagegate.dev rendered")
	}
	whs, _, _ := unstructured.NestedSlice(mwc.Object, "webhooks")
	if len(whs) != 1 {
		t.Fatalf("%d mutating webhooks, want 1", len(whs))
	}
	wh := whs[0].(map[string]any)
	field := func(m map[string]any, path ...string) any {
		v, _, _ := unstructured.NestedFieldNoCopy(m, path...)
		return v
	}
	same := func(what string, path ...string) {
		if got, want := field(wh, path...), field(validating.Object, path...); !reflect.DeepEqual(got, want) {
			t.Errorf("mutating webhook %s = %v, want the validating one's %v", what, got, want)
		}
	}
	same("failurePolicy", "failurePolicy")
	same("timeoutSeconds", "timeoutSeconds")
	same("sideEffects", "sideEffects")
	same("service name", "clientConfig", "service", "name")
	same("service namespace", "clientConfig", "service", "namespace")
	for path, want := range map[string]any{"name": "mutate.imagegate.dev", "reinvocationPolicy": "IfNeeded", "clientConfig.service.path": "/mutate"} {
		if got := field(wh, strings.Split(path, ".")...); got != want {
			t.Errorf("mutating webhook %s = %v, want %v", path, got, want)
		}
	}
	exprs, _, _ := unstructured.NestedSlice(wh, "namespaceSelector", "matchExpressions")
	vexprs, _, _ := unstructured.NestedSlice(validating.Object, "namespaceSelector", "matchExpressions")
	optOut := map[string]any{"key": "imagegate.dev/pin-digests", "operator": "NotIn", "values": []any{"false"}}
	if !reflect.DeepEqual(exprs, append(vexprs, optOut)) {
		t.Errorf("mutating namespaceSelector %v, want the validating one's %v and %v", exprs, vexprs, optOut)
	}
	rules, _, _ := unstructured.NestedSlice(wh, "rules")
	if fmt.Sprint(rules) != fmt.Sprint([]any{map[string]any{"operations": []any{"CREATE", "UPDATE"}, "apiGroups": []any{""}, "apiVersions": []any{"v1"},
		"resources": []any{"pods", "pods/ephemeralcontainers"}, "scope": "Namespaced"}}) {
		t.Errorf("mutating rules %v: want Pods (and their ephemeral containers) only", rules)
	}
	conds, _, _ := unstructured.NestedSlice(wh, "matchConditions")
	wantCond := []any{map[string]any{"name": "names-an-image-by-tag", "expression": pinCondition}}
	if !reflect.DeepEqual(conds, wantCond) {
		t.Errorf("mutating matchConditions %v, want %v (pods by digest skip the call)", conds, wantCond)
	}
	if role := find(objs, "ClusterRole", ""); role == nil || !strings.Contains(fmt.Sprint(role.Object["rules"]), "mutatingwebhookconfigurations") {
		t.Error("the ClusterRole may not patch the MutatingWebhookConfiguration's caBundle")
	}
	d := find(objs, "Deployment", "")
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	args, _, _ := unstructured.NestedStringSlice(cs[0].(map[string]any), "args")
	if !slices.Contains(args, "--cert-bootstrap-mutating-webhook=imagegate.dev") || slices.Contains(args, "--pin-digests=false") {
		t.Errorf("Deployment args %q: want --cert-bootstrap-mutating-webhook=imagegate.dev and pinning on", args)
	}
}

// TestDeployManifests renders deploy/kustomize/base (and the Helm chart when
// a helm binary is available), checks what an installation must be and has the
// real API server validate every object with a server-side dry run.
func TestDeployManifests(t *testing.T) {
	cluster := harness.SharedCluster(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dyn := cluster.ApplyPolicies(t) // the CRDs, so their kinds resolve; the dry run re-applies them
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memCache(cluster.Client(t).Discovery()))

	t.Run("kustomize base", func(t *testing.T) {
		objs := renderKustomize(t, filepath.Join(root, "deploy", "kustomize", "base"))
		checkManifests(t, objs, "imagegate-system")
		dryRunApply(t, dyn, mapper, objs)
		t.Logf("%d objects validated by the API server", len(objs))
	})

	t.Run("kustomize cert-manager overlay renders", func(t *testing.T) {
		objs := renderKustomize(t, filepath.Join(root, "deploy", "kustomize", "overlays", "cert-manager"))
		vwc := find(objs, "ValidatingWebhookConfiguration", "imagegate.dev")
		if vwc == nil || vwc.GetAnnotations()["cert-manager.io/inject-ca-from"] != "imagegate-system/imagegate-serving" {
			t.Fatalf("webhook configuration without the cert-manager CA injection annotation: %v", vwc)
		}
		if mwc := find(objs, "MutatingWebhookConfiguration", "imagegate.dev"); mwc == nil || mwc.GetAnnotations()["cert-manager.io/inject-ca-from"] != "imagegate-system/imagegate-serving" {
			t.Fatalf("mutating webhook configuration without the cert-manager CA injection annotation: %v", mwc)
		}
		if find(objs, "Certificate", "imagegate-serving") == nil {
			t.Fatal("no serving Certificate")
		}
		if find(objs, "Role", "imagegate-certs") != nil {
			t.Error("the certificate bootstrap's Role is still there with cert-manager")
		}
		d := find(objs, "Deployment", "imagegate")
		cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		args, _, _ := unstructured.NestedStringSlice(cs[0].(map[string]any), "args")
		if len(args) == 0 || args[len(args)-1] != "--cert-bootstrap-secret=" {
			t.Errorf("cert-manager overlay does not turn the bootstrap off: args %q", args)
		}
	})

	t.Run("helm chart", func(t *testing.T) {
		helm := harness.Tool("HELM")
		if cached := filepath.Join(harness.ToolsCacheDir(), "helm-"+helmVersion, "helm"); helm == "" {
			if _, err := os.Stat(cached); err != nil {
				t.Skipf("no helm binary: set HELM, or build it: GOBIN=%s go install helm.sh/helm/v3/cmd/helm@%s", filepath.Dir(cached), helmVersion)
			}
			helm = cached
		}
		out, err := exec.Command(helm, "template", "imagegate", filepath.Join(root, "deploy", "helm", "imagegate"),
			"--namespace", "imagegate-helm", "--include-crds", "--set", "namespace=imagegate-helm", "--set", "clusterId=e2e-cluster", "--set", "vulnerabilityReports=true").CombinedOutput()
		if err != nil {
			t.Fatalf("helm template: %v\n%s", err, out)
		}
		objs := splitYAML(t, append([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: imagegate-helm}\n---\n"), out...))
		checkManifests(t, objs, "imagegate-helm")
		dryRunApply(t, dyn, mapper, objs)
		t.Logf("%d objects validated by the API server", len(objs))

		out, err = exec.Command(helm, "template", "imagegate", filepath.Join(root, "deploy", "helm", "imagegate"),
			"--namespace", "imagegate-helm", "--set", "namespace=imagegate-helm", "--set", "clusterId=e2e-cluster", "--set", "tls.certManager=true").CombinedOutput()
		if err != nil {
			t.Fatalf("helm template with tls.certManager=true: %v\n%s", err, out)
		}
		objs = splitYAML(t, out)
		vwc := find(objs, "ValidatingWebhookConfiguration", "imagegate.dev")
		if vwc == nil || vwc.GetAnnotations()["cert-manager.io/inject-ca-from"] != "imagegate-helm/imagegate-serving" || find(objs, "Certificate", "imagegate-serving") == nil {
			t.Errorf("tls.certManager=true renders no serving Certificate or no CA injection: %v", vwc)
		}
		if mwc := find(objs, "MutatingWebhookConfiguration", "imagegate.dev"); mwc == nil || mwc.GetAnnotations()["cert-manager.io/inject-ca-from"] != "imagegate-helm/imagegate-serving" {
			t.Errorf("tls.certManager=true: no CA injection into the mutating webhook: %v", mwc)
		}

		// Pinning off: no mutating webhook, serve told so, nothing to patch.
		out, err = exec.Command(helm, "template", "imagegate", filepath.Join(root, "deploy", "helm", "imagegate"),
			"--namespace", "imagegate-helm", "--set", "namespace=imagegate-helm", "--set", "clusterId=e2e-cluster", "--set", "webhook.pinDigests=false").CombinedOutput()
		if err != nil {
			t.Fatalf("helm template with webhook.pinDigests=false: %v\n%s", err, out)
		}
		objs = splitYAML(t, append([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: imagegate-helm}\n---\n"), out...))
		if find(objs, "MutatingWebhookConfiguration", "") != nil {
			t.Error("webhook.pinDigests=false still renders a MutatingWebhookConfiguration")
		}
		d := find(objs, "Deployment", "imagegate")
		cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		args, _, _ := unstructured.NestedStringSlice(cs[0].(map[string]any), "args")
		if !slices.Contains(args, "--pin-digests=false") || !slices.Contains(args, "--cert-bootstrap-mutating-webhook=") {
			t.Errorf("webhook.pinDigests=false: args %q", args)
		}
		if role := find(objs, "ClusterRole", ""); role == nil || strings.Contains(fmt.Sprint(role.Object["rules"]), "mutatingwebhookconfigurations") {
			t.Error("webhook.pinDigests=false: the ClusterRole still names mutatingwebhookconfigurations")
		}
		dryRunApply(t, dyn, mapper, objs)

		// Runtime compliance: off renders nothing of it; on adds the flags,
		// the watch and write rules and the Lease Role; a bad action fails.
		for _, action := range []string{"none", "annotate"} {
			out, err = exec.Command(helm, "template", "imagegate", filepath.Join(root, "deploy", "helm", "imagegate"),
				"--namespace", "imagegate-helm", "--set", "namespace=imagegate-helm", "--set", "clusterId=e2e-cluster",
				"--set", "runtimeCompliance.enabled=true", "--set", "runtimeCompliance.action="+action).CombinedOutput()
			if err != nil {
				t.Fatalf("helm template with runtimeCompliance (%s): %v\n%s", action, err, out)
			}
			objs = splitYAML(t, append([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: imagegate-helm}\n---\n"), out...))
			d = find(objs, "Deployment", "imagegate")
			cs, _, _ = unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
			args, _, _ = unstructured.NestedStringSlice(cs[0].(map[string]any), "args")
			if !slices.Contains(args, "--runtime-compliance") || !slices.Contains(args, "--runtime-action="+action) {
				t.Errorf("runtimeCompliance (%s): args %q", action, args)
			}
			rules := fmt.Sprint(find(objs, "ClusterRole", "").Object["rules"])
			for _, want := range []string{"replicasets", "jobs", "policyreports", "pods"} {
				if !strings.Contains(rules, want) {
					t.Errorf("runtimeCompliance (%s): the ClusterRole lacks %s: %s", action, want, rules)
				}
			}
			// Pods are the only resource listed, watched and patched.
			if action == "annotate" && !strings.Contains(rules, "list watch patch") {
				t.Errorf("runtimeCompliance.action=annotate: no patch on pods: %s", rules)
			} else if action == "none" && strings.Contains(rules, "list watch patch") {
				t.Errorf("runtimeCompliance.action=none: patch on pods granted: %s", rules)
			}
			if role := find(objs, "Role", "imagegate-runtime"); role == nil || !strings.Contains(fmt.Sprint(role.Object["rules"]), "leases") {
				t.Errorf("runtimeCompliance (%s): no Lease Role: %v", action, role)
			}
			dryRunApply(t, dyn, mapper, objs)
		}
		out, err = exec.Command(helm, "template", "imagegate", filepath.Join(root, "deploy", "helm", "imagegate"),
			"--namespace", "imagegate-helm", "--set", "namespace=imagegate-helm", "--set", "clusterId=e2e-cluster",
			"--set", "runtimeCompliance.enabled=true", "--set", "runtimeCompliance.action=evict").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "runtimeCompliance.action must be none or annotate") {
			t.Errorf("runtimeCompliance.action=evict rendered (%v):\n%s", err, out)
		}
	})
}

// TestDeployRBACIsEnough runs imagegate as the ServiceAccount of
// deploy/kustomize/base with only the RBAC rules of the base: it must list
// and watch the policy resources (and so become ready) and write their status.
func TestDeployRBACIsEnough(t *testing.T) {
	cluster := harness.SharedCluster(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A strategy whose status imagegate must be allowed to write.
	const name = "rbac-check"
	dyn := cluster.ApplyPolicies(t, strings.Replace(kubeStrategy, "kube-block}", name+"}", 1))
	strategies := dyn.Resource(harness.OpaStrategies)
	client := cluster.Client(t)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memCache(client.Discovery()))
	var rbac []*unstructured.Unstructured
	for _, o := range renderKustomize(t, filepath.Join(root, "deploy", "kustomize", "base")) {
		switch o.GetKind() {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			rbac = append(rbac, o)
		}
	}
	for _, o := range rbac {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := o.MarshalJSON()
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if o.GetNamespace() != "" {
			ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "e2e", Force: ptr(true)}); err != nil {
			t.Fatalf("apply %s %s: %v", gvk.Kind, o.GetName(), err)
		}
		if o.GetKind() == "ClusterRoleBinding" || o.GetKind() == "ClusterRole" {
			res, name := m.Resource, o.GetName()
			t.Cleanup(func() { _ = dyn.Resource(res).Delete(context.Background(), name, metav1.DeleteOptions{}) })
		}
	}
	tok, err := client.CoreV1().ServiceAccounts("imagegate-system").CreateToken(ctx, "imagegate",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount imagegate-system/imagegate: %v", err)
	}
	kubeconfig := cluster.WriteKubeconfig(t, harness.KubeconfigToken(tok.Status.Token))
	// StartImagegate returns once /readyz answers 200: the policies were listed.
	ig := harness.StartImagegate(t, "--kubeconfig", kubeconfig, "--cluster-id", clusterID)
	waitFor(t, 10*time.Second, "status written by the ServiceAccount", func() (bool, error) {
		u, err := strategies.Get(ctx, name, metav1.GetOptions{})
		return err == nil && conditionStatus(u, "Accepted") == "True", err
	})
	// --kube-pull-secrets is on by default: the base's RBAC lets imagegate
	// list and watch registry credential Secrets and ServiceAccounts.
	waitFor(t, 10*time.Second, "pull secrets watched", func() (bool, error) {
		return strings.Contains(ig.Tail(200), "pull secrets and service accounts watched"), nil
	})
	if strings.Contains(ig.Tail(200), "forbidden") {
		t.Errorf("imagegate was refused something with the base's RBAC:\n%s", ig.Tail(40))
	}
	// And nothing more: the ServiceAccount may read Secrets (pull secrets)
	// but not change them, nor change policies.
	saCfg := rest.CopyConfig(cluster.Config)
	saCfg.TLSClientConfig.CertData, saCfg.TLSClientConfig.KeyData = nil, nil
	saCfg.BearerToken = tok.Status.Token
	saDyn, err := dynamic.NewForConfig(saCfg)
	if err != nil {
		t.Fatal(err)
	}
	secrets := schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	if _, err := saDyn.Resource(secrets).Namespace("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "type=kubernetes.io/dockerconfigjson"}); err != nil {
		t.Errorf("listing pull secrets as imagegate: %v", err)
	}
	if err := saDyn.Resource(secrets).Namespace("kube-system").Delete(ctx, "anything", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Errorf("deleting a Secret in kube-system as imagegate: %v, want forbidden", err)
	}
	tlsSecret := harness.DecodeYAML(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: imagegate-tls}\ndata: {}\n")
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if _, err := saDyn.Resource(secrets).Namespace("imagegate-system").Create(ctx, tlsSecret, dry); err != nil {
		t.Errorf("creating the bootstrap Secret as imagegate: %v", err)
	}
	if _, err := saDyn.Resource(secrets).Namespace("default").Create(ctx, tlsSecret, dry); !apierrors.IsForbidden(err) {
		t.Errorf("creating a Secret in default as imagegate: %v, want forbidden", err)
	}
	if err := saDyn.Resource(harness.OpaStrategies).Delete(ctx, name, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Errorf("deleting an OpaStrategy as imagegate: %v, want forbidden", err)
	}
}

func memCache(d discovery.DiscoveryInterface) discovery.CachedDiscoveryInterface {
	return memory.NewMemCacheClient(d)
}
