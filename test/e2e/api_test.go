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
	tokens := writeFile(t, dir, "tokens.csv", "admin-e2e,root,imagegate:admins\nalice-e2e,alice,security\n")
	apiListen := net.JoinHostPort("127.0.0.1", strconv.Itoa(harness.FreePort(t)))
	g := startGate(t, strategies, facts, "--policy-poll-interval", "200ms",
		"--api-listen", apiListen, "--api-tokens", tokens, "--api-state", filepath.Join(dir, "iam.json"))
	policyDir := g.policyDir
	api := managementAPI{client: g.HTTPClient(), addr: apiListen}
	call := func(token, action string, kv ...string) (int, map[string]any) {
		t.Helper()
		return api.action(t, token, action, kv...)
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

// managementAPI calls imagegate's management API (serve --api-listen).
type managementAPI struct {
	client *http.Client // trusts imagegate's serving certificate
	addr   string       // host:port of --api-listen
}

// action POSTs Action with the form of the key-value pairs kv as the
// holder of token; it returns the status and the JSON body.
func (a managementAPI) action(t *testing.T, token, action string, kv ...string) (int, map[string]any) {
	t.Helper()
	form := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	st, m := a.do(t, token, http.MethodPost, "/?Action="+action, "application/x-www-form-urlencoded", form.Encode())
	t.Logf("%s %s -> %d %v %v", action, kv, st, m["Code"], m["Message"])
	return st, m
}

// do sends a request as the holder of token and returns the status and the
// JSON body (nil when empty); a body that is not JSON fails the test.
func (a managementAPI) do(t *testing.T, token, method, path, contentType, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+a.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: %d with a body that is not a JSON object: %v: %s", method, path, resp.StatusCode, err, raw)
		}
	}
	return resp.StatusCode, m
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
	own := writeFile(t, dir, "own-token", token("imagegate"))
	tokens := writeFile(t, dir, "tokens.csv", "admin-e2e,root,imagegate:admins\n")
	apiListen := net.JoinHostPort("127.0.0.1", strconv.Itoa(harness.FreePort(t)))
	g := startGate(t, strategies, facts, "--api-listen", apiListen, "--api-tokens", tokens, "--api-state", filepath.Join(dir, "iam.json"),
		"--api-token-review", "--api-token-review-server", cluster.URL, "--api-token-review-ca-file", cluster.CA.CertFile, "--api-token-review-token-file", own)
	api := managementAPI{client: g.HTTPClient(), addr: apiListen}
	do := func(token, method, path, body string) (int, map[string]any) {
		t.Helper()
		st, m := api.do(t, token, method, path, "", body)
		t.Logf("%s %s -> %d %v", method, path, st, m)
		return st, m
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
