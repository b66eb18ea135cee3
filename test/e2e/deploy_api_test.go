package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/test/e2e/harness"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// helmBinary is the helm the chart tests run; the test skips without one.
func helmBinary(t *testing.T) string {
	t.Helper()
	if helm := harness.Tool("HELM"); helm != "" {
		return helm
	}
	cached := filepath.Join(harness.ToolsCacheDir(), "helm-"+helmVersion, "helm")
	if _, err := os.Stat(cached); err != nil {
		t.Skipf("no helm binary: set HELM, or build it: GOBIN=%s go install helm.sh/helm/v3/cmd/helm@%s", filepath.Dir(cached), helmVersion)
	}
	return cached
}

// helmTemplate renders the chart into namespace ns with --set values.
func helmTemplate(t *testing.T, ns string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"template", "imagegate", filepath.Join(root, "deploy", "helm", "imagegate"), "--namespace", ns, "--set", "namespace=" + ns}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := exec.Command(helmBinary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return splitYAML(t, out)
}

// containerArgs are the args of a Deployment's first container.
func containerArgs(t *testing.T, d *unstructured.Unstructured) []string {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) == 0 {
		t.Fatalf("Deployment %s has no containers", d.GetName())
	}
	args, _, _ := unstructured.NestedStringSlice(cs[0].(map[string]any), "args")
	return args
}

// policyWriters lists, per ClusterRole, the imagegate.dev resources it may
// create, update and delete.
func policyWriters(objs []*unstructured.Unstructured) map[string][]string {
	out := map[string][]string{}
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		for _, r := range rules {
			rule := r.(map[string]any)
			groups, _, _ := unstructured.NestedStringSlice(rule, "apiGroups")
			verbs, _, _ := unstructured.NestedStringSlice(rule, "verbs")
			res, _, _ := unstructured.NestedStringSlice(rule, "resources")
			if !slices.Contains(groups, "imagegate.dev") {
				continue
			}
			if slices.Contains(verbs, "create") && slices.Contains(verbs, "update") && slices.Contains(verbs, "delete") {
				out[o.GetName()] = append(out[o.GetName()], res...)
			}
		}
	}
	return out
}

// TestDeployChartAPI renders the Helm chart with api.enabled=true: the
// real API server accepts every object (server-side dry run), only the
// API's ClusterRole writes the policy objects, and imagegate run with the
// API Deployment's own args, as the API's ServiceAccount with only the
// chart's RBAC, serves the management API: a tokens-file administrator
// creates, updates and deletes an OpaStrategy, and a Kubernetes token is
// authenticated by TokenReview. With default values nothing of it renders.
func TestDeployChartAPI(t *testing.T) {
	cluster := harness.SharedCluster(t)
	const ns = "imagegate-helmapi"
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	client := cluster.Client(t)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memCache(client.Discovery()))
	harness.ApplyCRDs(t, dyn)

	t.Run("default values render no API", func(t *testing.T) {
		objs := helmTemplate(t, ns, "clusterId="+clusterID)
		if w := policyWriters(objs); len(w) != 0 {
			t.Errorf("ClusterRoles writing policy objects with default values: %v", w)
		}
		for _, o := range objs {
			if strings.HasSuffix(o.GetName(), "-api") || strings.HasSuffix(o.GetName(), "-api-state") {
				t.Errorf("%s %s rendered with api.enabled=false", o.GetKind(), o.GetName())
			}
		}
		if args := strings.Join(containerArgs(t, find(objs, "Deployment", "imagegate")), " "); strings.Contains(args, "--api-") || strings.Contains(args, "imagegate-api.") {
			t.Errorf("webhook Deployment args mention the API with default values: %s", args)
		}
	})

	objs := helmTemplate(t, ns, "clusterId="+clusterID, "api.enabled=true", "api.tokensSecret=imagegate-api-tokens", "api.extraArgs={--api-max-body-bytes=65536}")
	apiDeploy := find(objs, "Deployment", "imagegate-api")
	if apiDeploy == nil {
		t.Fatal("api.enabled=true renders no Deployment imagegate-api")
	}
	args := containerArgs(t, apiDeploy)

	t.Run("rendered objects", func(t *testing.T) {
		want := []string{"--policy-source=kube", "--cluster-id=" + clusterID, "--api-listen=:9443", "--api-state=/var/lib/imagegate/iam.json",
			"--api-token-review", "--api-tokens=/etc/imagegate/api-tokens/tokens.csv", "--api-max-body-bytes=65536", "--kube-pull-secrets=false"}
		for _, a := range want {
			if !slices.Contains(args, a) {
				t.Errorf("API Deployment args %q lack %s", args, a)
			}
		}
		if r := apiDeploy.Object["spec"].(map[string]any)["replicas"]; fmt.Sprint(r) != "1" {
			t.Errorf("API Deployment replicas %v, want 1 (one owner of the state file)", r)
		}
		if w := policyWriters(objs); len(w) != 1 || !slices.Equal(w["imagegate-api"], []string{"attestors", "binarysecuritypolicies", "opastrategies"}) {
			t.Errorf("ClusterRoles writing policy objects: %v, want only imagegate-api on the three kinds", w)
		}
		role := find(objs, "ClusterRole", "imagegate-api")
		if rules := fmt.Sprint(role.Object["rules"]); !strings.Contains(rules, "tokenreviews") {
			t.Errorf("ClusterRole imagegate-api lacks create on tokenreviews: %s", rules)
		}
		svc := find(objs, "Service", "imagegate-api")
		if svc == nil || !strings.Contains(fmt.Sprint(svc.Object["spec"]), "port:9443") || !strings.Contains(fmt.Sprint(svc.Object["spec"]), "component:api") {
			t.Errorf("Service imagegate-api: %v, want port 9443 to the API pod", svc)
		}
		if find(objs, "PersistentVolumeClaim", "imagegate-api-state") == nil {
			t.Error("no PersistentVolumeClaim for the IAM state")
		}
		webhookArgs := strings.Join(containerArgs(t, find(objs, "Deployment", "imagegate")), " ")
		if !strings.Contains(webhookArgs, "imagegate-api."+ns+".svc") {
			t.Errorf("the bootstrapped serving certificate does not name the API Service: %s", webhookArgs)
		}
		if strings.Contains(webhookArgs, "--api-") {
			t.Errorf("the webhook pods serve the API too: %s", webhookArgs)
		}
	})

	t.Run("the API server accepts every object", func(t *testing.T) {
		all := append([]*unstructured.Unstructured{harness.DecodeYAML(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n")}, objs...)
		dryRunApply(t, dyn, mapper, all)
		t.Logf("%d objects validated by the API server", len(all))
	})

	t.Run("value combinations", func(t *testing.T) {
		tests := []struct {
			name        string
			set         []string
			args, noArg []string
			tokenReview bool
			pvc         bool
		}{
			{"TokenReview only", nil, []string{"--api-token-review"}, []string{"--api-tokens"}, true, true},
			{"tokens file only, no persistence", []string{"api.tokenReview=false", "api.tokensSecret=t", "api.persistence.enabled=false"},
				[]string{"--api-tokens=/etc/imagegate/api-tokens/tokens.csv"}, []string{"--api-token-review"}, false, false},
			{"cert-manager, other port and storage class", []string{"tls.certManager=true", "api.port=10443", "api.persistence.storageClass=fast"},
				[]string{"--api-listen=:10443"}, nil, true, true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				objs := helmTemplate(t, ns, append([]string{"clusterId=" + clusterID, "api.enabled=true"}, tc.set...)...)
				args := containerArgs(t, find(objs, "Deployment", "imagegate-api"))
				for _, a := range tc.args {
					if !slices.Contains(args, a) {
						t.Errorf("args %q lack %s", args, a)
					}
				}
				for _, a := range tc.noArg {
					if strings.Contains(strings.Join(args, " "), a) {
						t.Errorf("args %q have %s", args, a)
					}
				}
				if got := strings.Contains(fmt.Sprint(find(objs, "ClusterRole", "imagegate-api").Object["rules"]), "tokenreviews"); got != tc.tokenReview {
					t.Errorf("tokenreviews in ClusterRole imagegate-api: %v, want %v", got, tc.tokenReview)
				}
				if got := find(objs, "PersistentVolumeClaim", "imagegate-api-state") != nil; got != tc.pvc {
					t.Errorf("PersistentVolumeClaim rendered: %v, want %v", got, tc.pvc)
				}
				// The harness has no cert-manager CRDs (as TestDeployManifests,
				// its objects are only rendered).
				apply := []*unstructured.Unstructured{harness.DecodeYAML(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n")}
				for _, o := range objs {
					if o.GroupVersionKind().Group != "cert-manager.io" {
						apply = append(apply, o)
					}
				}
				if cert := find(objs, "Certificate", "imagegate-serving"); cert != nil {
					names, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
					if !slices.Contains(names, "imagegate-api."+ns+".svc") {
						t.Errorf("serving Certificate dnsNames %v lack the API Service", names)
					}
				}
				dryRunApply(t, dyn, mapper, apply)
			})
		}
		t.Run("no way to authenticate", func(t *testing.T) {
			root, _ := harness.RepoRoot()
			out, err := exec.Command(helmBinary(t), "template", "imagegate", filepath.Join(root, "deploy", "helm", "imagegate"),
				"--namespace", "imagegate-system", "--set", "clusterId=c1", "--set", "api.enabled=true", "--set", "api.tokenReview=false").CombinedOutput()
			if err == nil || !strings.Contains(string(out), "api.enabled needs api.tokenReview=true or api.tokensSecret") {
				t.Errorf("helm template with no API authentication: %v\n%s", err, out)
			}
		})
	})

	t.Run("imagegate with the API Deployment's args and RBAC", func(t *testing.T) {
		applyForReal(t, dyn, mapper, harness.DecodeYAML(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n"))
		for _, o := range objs {
			switch {
			case o.GetKind() == "ServiceAccount" && o.GetName() == "imagegate-api",
				o.GetKind() == "ClusterRole" && o.GetName() == "imagegate-api",
				o.GetKind() == "ClusterRoleBinding" && o.GetName() == "imagegate-api":
				applyForReal(t, dyn, mapper, o)
			}
		}
		runAPIFromArgs(t, cluster, dyn, ns, args)
	})
}

// applyForReal server-side applies o; cluster-scoped RBAC is deleted again
// in a cleanup (namespaced objects stay with their namespace, which other
// tests share).
func applyForReal(t *testing.T, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, o *unstructured.Unstructured) {
	t.Helper()
	gvk := o.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatal(err)
	}
	data, err := o.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if o.GetNamespace() != "" {
		ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	}
	if _, err := ri.Patch(context.Background(), o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "e2e", Force: ptr(true)}); err != nil {
		t.Fatalf("apply %s %s: %v", gvk.Kind, o.GetName(), err)
	}
	if o.GetKind() == "ClusterRole" || o.GetKind() == "ClusterRoleBinding" {
		res, name := m.Resource, o.GetName()
		t.Cleanup(func() { _ = dyn.Resource(res).Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
}

// serviceAccountToken is a one-hour token of ServiceAccount ns/name.
func serviceAccountToken(t *testing.T, cluster *harness.Cluster, ns, name string) string {
	t.Helper()
	tok, err := cluster.Client(t).CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount %s/%s: %v", ns, name, err)
	}
	return tok.Status.Token
}

// runAPIFromArgs runs imagegate with a rendered API Deployment's args, the in-pod paths
// replaced by local files, as ServiceAccount imagegate-api, and calls the
// API with a tokens-file administrator and a TokenReview'd ServiceAccount.
func runAPIFromArgs(t *testing.T, cluster *harness.Cluster, dyn dynamic.Interface, ns string, chartArgs []string) {
	ctx := context.Background()
	dir := t.TempDir()
	apiToken := serviceAccountToken(t, cluster, ns, "imagegate-api")
	tokenFile := filepath.Join(dir, "sa-token")
	kubeconfig := cluster.WriteKubeconfig(t, harness.KubeconfigToken(apiToken))
	tokens := filepath.Join(dir, "tokens.csv")
	for f, data := range map[string]string{tokenFile: apiToken, tokens: "chart-admin-e2e,root,imagegate:admins\n"} {
		if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(dir, "iam.json")
	apiListen := net.JoinHostPort("127.0.0.1", strconv.Itoa(harness.FreePort(t)))
	// The chart's args with what lives in the pod's volumes mapped to local
	// files; listen, metrics and serving certificate come from the harness.
	var args []string
	for _, a := range chartArgs[1:] { // [0] is "serve"
		name, _, _ := strings.Cut(a, "=")
		switch name {
		case "--listen", "--metrics-listen", "--tls-cert-file", "--tls-private-key-file":
		case "--api-listen":
			args = append(args, "--api-listen="+apiListen)
		case "--api-state":
			args = append(args, "--api-state="+state)
		case "--api-tokens":
			args = append(args, "--api-tokens="+tokens)
		default:
			args = append(args, a)
		}
	}
	// In a pod these are the in-cluster defaults.
	args = append(args, "--kubeconfig", kubeconfig, "--api-token-review-server", cluster.URL,
		"--api-token-review-ca-file", cluster.CA.CertFile, "--api-token-review-token-file", tokenFile)
	t.Logf("imagegate serve %s", strings.Join(args, " "))
	ig := harness.StartImagegate(t, args...)
	httpClient := ig.HTTPClient()

	do := func(token, method, path string, body io.Reader, contentType string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+apiListen+path, body)
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		t.Logf("%s %s -> %d %v %v", method, path, resp.StatusCode, m["Code"], m["Message"])
		return resp.StatusCode, m
	}
	call := func(token, action string, kv ...string) (int, map[string]any) {
		t.Helper()
		form := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			form.Set(kv[i], kv[i+1])
		}
		return do(token, "POST", "/?Action="+action, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	}

	strategies := dyn.Resource(harness.OpaStrategies)
	var id int64
	t.Run("tokens file administrator writes the custom resources", func(t *testing.T) {
		st, body := call("chart-admin-e2e", "CreateOpaStrategyNew", "StrategyName", "chartapi-block", "RuleAction", "2", "ClusterId", clusterID,
			"ImageName", `["chartapi-app"]`, "Scopes", `[{"ClusterId":"`+clusterID+`","AllNamespace":1}]`)
		if st != 200 {
			t.Fatalf("create: %d %v", st, body)
		}
		id = int64(body["Data"].(map[string]any)["StrategyId"].(float64))
		name := fmt.Sprintf("opastrategy-%d", id)
		t.Cleanup(func() { _ = strategies.Delete(context.Background(), name, metav1.DeleteOptions{}) })
		if _, err := strategies.Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Fatalf("OpaStrategy %s after the create call: %v", name, err)
		}
		if st, body := call("chart-admin-e2e", "UpdateOpaStrategyNew", "StrategyId", strconv.FormatInt(id, 10), "ImageName", `["chartapi-app","other"]`); st != 200 {
			t.Fatalf("update: %d %v", st, body)
		}
		u, err := strategies.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if images, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "imageName"); !slices.Equal(images, []string{"chartapi-app", "other"}) {
			t.Errorf("imageName after the update call: %v", images)
		}
		if st, body := call("chart-admin-e2e", "DeleteOpaStrategyNew", "StrategyId", strconv.FormatInt(id, 10)); st != 200 {
			t.Fatalf("delete: %d %v", st, body)
		}
		if _, err := strategies.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("OpaStrategy %s after the delete call: %v, want NotFound", name, err)
		}
	})

	t.Run("a Kubernetes token is authenticated by TokenReview", func(t *testing.T) {
		client := cluster.Client(t)
		if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "chartapi-reader"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		reader := serviceAccountToken(t, cluster, ns, "chartapi-reader")
		if st, body := call("not-a-token", "ListOpaClusterStrategyNew"); st != 401 || body["Code"] != "InvalidToken" {
			t.Errorf("unknown token: %d %v, want 401 InvalidToken", st, body)
		}
		// Authenticated, but nothing allows it yet.
		if st, body := call(reader, "ListOpaClusterStrategyNew"); st != 403 || body["Code"] != "NoPermission" {
			t.Errorf("ServiceAccount token before any policy: %d %v, want 403 NoPermission", st, body)
		}
		role := `{"role":{"display_name":"ChartReaders","type":"AX","description":"read",` +
			`"policy":{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:List*"],"Resource":["*"]}]}}}`
		st, body := do("chart-admin-e2e", "POST", "/v3.0/OS-ROLE/roles", bytes.NewBufferString(role), "application/json")
		if st != 201 {
			t.Fatalf("create role: %d %v", st, body)
		}
		roleID := body["role"].(map[string]any)["id"].(string)
		if st, body := do("chart-admin-e2e", "PUT", "/v3.0/OS-ROLE/groups/system:serviceaccounts:"+ns+"/roles/"+roleID, nil, "application/json"); st != 204 {
			t.Fatalf("attach role to the namespace's service accounts: %d %v", st, body)
		}
		if st, body := call(reader, "ListOpaClusterStrategyNew"); st != 200 {
			t.Errorf("ServiceAccount token with a policy for its group: %d %v, want 200", st, body)
		}
		data, err := os.ReadFile(state)
		if err != nil || !strings.Contains(string(data), roleID) {
			t.Errorf("IAM state file %s does not hold role %s: %v", state, roleID, err)
		}
	})

	if tail := ig.Tail(300); strings.Contains(tail, "forbidden") {
		t.Errorf("imagegate was refused something with the chart's API RBAC:\n%s", ig.Tail(40))
	}
}
