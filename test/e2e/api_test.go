package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	meta "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// apiImage is what the management API's strategy targets; facts know
// nothing of it (unscanned), and no strategy of the start set names it.
const apiImage = "127.0.0.1:5000/api-app:1.0"

// TestManagementAPIGovernsAdmission: a strategy created through the
// management API blocks the next pod the real kube-apiserver sends;
// refused changes (no permission, invalid value, a control policy's Deny)
// leave the policy directory as it was and the block in force; deleting
// the strategy through the API admits the image again.
func TestManagementAPIGovernsAdmission(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte("admin-e2e,root,imagegate:admins\nalice-e2e,alice,security\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	apiListen := net.JoinHostPort("127.0.0.1", strconv.Itoa(harness.FreePort(t)))
	g, policyDir := startAPIGate(t, "--policy-poll-interval", "200ms",
		"--api-listen", apiListen, "--api-tokens", tokens, "--api-state", filepath.Join(dir, "iam.json"))
	client := g.HTTPClient()
	call := func(token, action string, kv ...string) (int, map[string]any) {
		t.Helper()
		form := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			form.Set(kv[i], kv[i+1])
		}
		req, _ := http.NewRequest("POST", "https://"+apiListen+"/?Action="+action, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %s -> %d %v", action, kv, resp.StatusCode, m["Code"])
		return resp.StatusCode, m
	}
	ctx := context.Background()
	pods := g.client.CoreV1().Pods(g.ns)
	n := 0
	create := func() error {
		n++
		_, err := pods.Create(ctx, pod(fmt.Sprintf("api-%d", n), apiImage, nil), meta.CreateOptions{})
		return err
	}
	if err := create(); err != nil {
		t.Fatalf("before any API change: %v", err)
	}

	st, body := call("admin-e2e", "CreateOpaStrategyNew", "StrategyName", "api-block", "RuleAction", "2", "ClusterId", clusterID,
		"ImageName", `["api-app"]`, "Scopes", `[{"ClusterId":"`+clusterID+`","AllNamespace":1}]`)
	if st != 200 {
		t.Fatalf("create: %d %v", st, body)
	}
	id := int(body["Data"].(map[string]any)["StrategyId"].(float64))
	want := fmt.Sprintf(`blocked by strategy %d "api-block"`, id)
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for err = create(); err == nil && time.Now().Before(deadline); err = create() {
		time.Sleep(200 * time.Millisecond)
	}
	mustDeny(t, "pod after the API created a block strategy", err, want, apiImage)

	before := readPolicyDir(t, policyDir)
	st, body = call("alice-e2e", "DeleteOpaStrategyNew", "StrategyId", strconv.Itoa(id))
	if st != 403 || body["Code"] != "NoPermission" || body["Message"] != "caller has no permission" {
		t.Errorf("alice: %d %v", st, body)
	}
	st, body = call("admin-e2e", "UpdateOpaStrategyNew", "StrategyId", strconv.Itoa(id), "RuleAction", "9")
	if st != 400 || body["Code"] != "InvalidParameter.RuleAction" {
		t.Errorf("invalid: %d %v", st, body)
	}
	st, body = call("admin-e2e", "CreateControlPolicy", "PolicyName", "NoAllowRules", "EffectScope", "All", "PolicyDocument",
		`{"Version":"1","Statement":[{"Effect":"Deny","Action":"imagegate:*OpaStrategyNew","Resource":"*","Condition":{"NumericEquals":{"imagegate:RuleAction":3},"StringEquals":{"imagegate:ClusterId":"`+clusterID+`"}}}]}`)
	if st != 200 {
		t.Fatalf("control policy: %d %v", st, body)
	}
	cp := body["ControlPolicy"].(map[string]any)["PolicyId"].(string)
	if st, body = call("admin-e2e", "AttachControlPolicy", "PolicyId", cp, "TargetId", "*"); st != 200 {
		t.Fatalf("attach: %d %v", st, body)
	}
	st, body = call("admin-e2e", "UpdateOpaStrategyNew", "StrategyId", strconv.Itoa(id), "RuleAction", "3")
	if st != 403 || body["Code"] != "NoPermission" {
		t.Errorf("allow rule under the control policy: %d %v", st, body)
	}
	if after := readPolicyDir(t, policyDir); !reflect.DeepEqual(before, after) {
		t.Errorf("refused changes touched the policy directory")
	}
	time.Sleep(500 * time.Millisecond) // more than two poll intervals
	mustDeny(t, "pod after refused changes", create(), want)

	if st, body = call("admin-e2e", "DeleteOpaStrategyNew", "StrategyId", strconv.Itoa(id)); st != 200 {
		t.Fatalf("delete: %d %v", st, body)
	}
	deadline = time.Now().Add(20 * time.Second)
	for err = create(); err != nil && time.Now().Before(deadline); err = create() {
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after the API deleted the strategy: %v", err)
	}
}

// startAPIGate is startGate with the webhook tests' strategies and facts,
// also returning the policy directory the management API writes to.
func startAPIGate(t *testing.T, extraArgs ...string) (*gate, string) {
	t.Helper()
	cluster := harness.SharedCluster(t)
	dir := t.TempDir()
	policyDir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(policyDir, "policies.yaml"), []byte(strategies), 0o644); err != nil {
		t.Fatal(err)
	}
	factsFile := filepath.Join(dir, "facts.yaml")
	if err := os.WriteFile(factsFile, []byte(facts), 0o644); err != nil {
		t.Fatal(err)
	}
	ig := harness.StartImagegate(t, append([]string{"--policies", policyDir, "--cluster-id", clusterID, "--facts", factsFile}, extraArgs...)...)
	harness.RegisterWebhook(t, cluster.Config, ig.URL, ig.CAPEM)
	cfg, warnings := harness.ConfigWithWarnings(cluster.Config)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &gate{Imagegate: ig, cluster: cluster, client: client, warnings: warnings,
		ns: createNamespace(t, cluster.Client(t), "managementapi")}, policyDir
}

func readPolicyDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// TestManagementAPITokenReview: with --api-token-review, a service
// account's token authenticates through the real API server's TokenReview;
// its user and groups are what policies attach to.
func TestManagementAPITokenReview(t *testing.T) {
	cluster := harness.SharedCluster(t)
	admin := cluster.Client(t)
	ctx := context.Background()
	ns := createNamespace(t, admin, "tokenreview")
	for _, name := range []string{"imagegate", "alice"} {
		if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: meta.ObjectMeta{Name: name}}, meta.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	binding := "imagegate-e2e-auth-delegator-" + ns
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: meta.ObjectMeta{Name: binding},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "imagegate", Namespace: ns}},
	}, meta.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding, meta.DeleteOptions{})
	})
	token := func(sa string) string {
		tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, meta.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	dir := t.TempDir()
	own := filepath.Join(dir, "own-token")
	tokens := filepath.Join(dir, "tokens.csv")
	os.WriteFile(own, []byte(token("imagegate")), 0o600)
	os.WriteFile(tokens, []byte("admin-e2e,root,imagegate:admins\n"), 0o600)
	apiListen := net.JoinHostPort("127.0.0.1", strconv.Itoa(harness.FreePort(t)))
	g, _ := startAPIGate(t, "--api-listen", apiListen, "--api-tokens", tokens, "--api-state", filepath.Join(dir, "iam.json"),
		"--api-token-review", "--api-token-review-server", cluster.URL, "--api-token-review-ca-file", cluster.CA.CertFile, "--api-token-review-token-file", own)
	client := g.HTTPClient()
	do := func(token, method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+apiListen+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		t.Logf("%s %s -> %d %v", method, path, resp.StatusCode, m)
		return resp.StatusCode, m
	}
	alice := token("alice")
	if st, body := do(alice, "POST", "/?Action=DescribeAttestors", ""); st != 403 || body["Code"] != "NoPermission" {
		t.Fatalf("alice before any grant: %d %v", st, body)
	}
	if st, body := do("forged."+alice[:20], "POST", "/?Action=DescribeAttestors", ""); st != 401 || body["Code"] != "InvalidToken" {
		t.Errorf("forged: %d %v", st, body)
	}
	st, body := do("admin-e2e", "POST", "/v3.0/OS-ROLE/roles", `{"role":{"display_name":"ReadAttestors","type":"AX","description":"d",
		"policy":{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:DescribeAttestors"],"Resource":["*"]}]}}}`)
	if st != 201 {
		t.Fatalf("role: %d %v", st, body)
	}
	role := body["role"].(map[string]any)["id"].(string)
	if st, body := do("admin-e2e", "PUT", "/v3.0/OS-ROLE/groups/system:serviceaccounts:"+ns+"/roles/"+role, ""); st != 204 {
		t.Fatalf("attach: %d %v", st, body)
	}
	if st, body := do(alice, "POST", "/?Action=DescribeAttestors", ""); st != 200 {
		t.Errorf("alice after the grant to her namespace's service accounts: %d %v", st, body)
	}
	if st, body := do(alice, "POST", "/?Action=DescribeBinarySecurityPolicies", ""); st != 403 {
		t.Errorf("alice beyond the grant: %d %v", st, body)
	}
}
