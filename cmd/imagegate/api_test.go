package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeManagementAPI runs the real binary: a strategy created through
// the management API governs the next admission, a refused change leaves
// the policy directory as it was, and callers without permission or token
// are refused.
func TestServeManagementAPI(t *testing.T) {
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1").CombinedOutput(); err != nil {
		t.Skipf("openssl: %v %s", err, out)
	}
	tokens := filepath.Join(dir, "tokens.csv")
	os.WriteFile(tokens, []byte("admin-secret,root,imagegate:admins\nalice-secret,alice,security\n"), 0o600)
	listen, apiListen := freePort(t), freePort(t)
	cmd := exec.Command(binary, "serve", "--policies", policies, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--listen", listen, "--metrics-listen", "", "--policy-poll-interval", "100ms",
		"--api-listen", apiListen, "--api-tokens", tokens, "--api-state", filepath.Join(dir, "iam.json"))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	logs := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, "ready", func() bool {
		resp, err := client.Get("https://" + listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	call := func(token, action string, kv ...string) (int, map[string]any) {
		t.Helper()
		form := url.Values{"Action": {action}}
		for i := 0; i+1 < len(kv); i += 2 {
			form.Set(kv[i], kv[i+1])
		}
		req, _ := http.NewRequest("POST", "https://"+apiListen+"/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		if m["RequestId"] == nil {
			t.Errorf("%s: no RequestId: %v", action, m)
		}
		return resp.StatusCode, m
	}
	allowed := func() bool {
		body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"namespace":"default","operation":"CREATE",` +
			`"object":{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"bad-app:1"}]}}}}`
		resp, err := client.Post("https://"+listen+"/validate?timeout=5s", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Response struct{ Allowed bool } }
		json.NewDecoder(resp.Body).Decode(&out)
		return out.Response.Allowed
	}
	if !allowed() {
		t.Fatal("bad-app refused before any strategy exists")
	}
	if st, body := call("", "ListOpaClusterStrategyNew"); st != 401 || body["Code"] != "InvalidToken" {
		t.Errorf("no token: %d %v", st, body)
	}
	if st, body := call("alice-secret", "CreateOpaStrategyNew", "StrategyName", "block-bad", "RuleAction", "2", "ClusterId", "c1"); st != 403 || body["Code"] != "NoPermission" {
		t.Errorf("alice: %d %v", st, body)
	}
	st, body := call("admin-secret", "CreateOpaStrategyNew", "StrategyName", "block-bad", "RuleAction", "2", "ClusterId", "c1", "ImageName", `["bad-*"]`)
	if st != 200 || body["Success"] != true {
		t.Fatalf("create: %d %v", st, body)
	}
	waitFor(t, "the strategy created through the API to block", func() bool { return !allowed() })

	before := readDir(t, policies)
	st, body = call("admin-secret", "UpdateOpaStrategyNew", "StrategyId", "1", "RuleAction", "7")
	if st != 400 || body["Code"] != "InvalidParameter.RuleAction" {
		t.Errorf("invalid update: %d %v", st, body)
	}
	if !reflect.DeepEqual(before, readDir(t, policies)) {
		t.Error("a refused change touched the policy directory")
	}
	time.Sleep(300 * time.Millisecond)
	if allowed() {
		t.Error("the refused change unblocked bad-app")
	}
	st, body = call("admin-secret", "UpdateOpaStrategyNew", "StrategyId", "1", "RuleAction", "1")
	if st != 200 {
		t.Fatalf("update: %d %v", st, body)
	}
	waitFor(t, "the alert strategy to admit", allowed)

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of SIGTERM")
	}
	var all []string
	for l := range logs {
		all = append(all, l)
	}
	joined := strings.Join(all, "\n")
	if !strings.Contains(joined, `"msg":"api call"`) || !strings.Contains(joined, `"principal":"alice"`) || !strings.Contains(joined, `"code":"NoPermission"`) {
		t.Errorf("no audit lines for API calls:\n%s", joined)
	}
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = string(b)
	}
	return out
}

func TestServeAPIFlagErrors(t *testing.T) {
	dir := t.TempDir()
	base := []string{"serve", "--policies", dir, "--cluster-id", "c", "--tls-cert-file", "a", "--tls-private-key-file", "b"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"listen without tokens", []string{"--api-listen", "127.0.0.1:0"}, "--api-listen needs --api-state and --api-tokens or --api-token-review"},
		{"tokens without listen", []string{"--api-tokens", "t.csv"}, "--api-tokens, --api-token-review and --api-state need --api-listen"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, "", append(append([]string{}, base...), c.args...)...)
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d: %s", code, errOut)
			}
		})
	}
}
