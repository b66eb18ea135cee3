package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
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
	cert, key := selfSignedCert(t, dir)
	tokens := filepath.Join(dir, "tokens.csv")
	os.WriteFile(tokens, []byte("admin-secret,root,imagegate:admins\nalice-secret,alice,security\n"), 0o600)
	listen, apiListen := freePort(t), freePort(t)
	cmd := exec.Command(binary, "serve", "--policies", policies, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--listen", listen, "--metrics-listen", "", "--policy-poll-interval", "100ms",
		"--api-listen", apiListen, "--api-tokens", tokens, "--api-state", filepath.Join(dir, "iam.json"))
	var logs bytes.Buffer // complete once stopServe returns
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	client := serveClient()
	waitReady(t, client, listen)
	call := apiCaller(t, client, apiListen)
	allowed := func() bool { return podAllowed(t, client, listen, "bad-app:1") }
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

	stopServe(t, cmd)
	joined := logs.String()
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
		{"listen without tokens", []string{"--api-listen", "127.0.0.1:0"}, "--api-listen needs --api-state and --api-tokens, --api-token-review or --api-access-key-encryption-key-file"},
		{"tokens without listen", []string{"--api-tokens", "t.csv"}, "--api-tokens, --api-token-review, --api-access-key-encryption-key-file and --api-state need --api-listen"},
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
