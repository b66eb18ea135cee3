package main

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeConsole runs the real binary with --console-listen: the console
// answers over TLS on its own listener, signs in with a management API
// token, reads the audit store (an admission refused by serve is there),
// the policies through the API, and decides a pasted manifest.
func TestServeConsole(t *testing.T) {
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	os.WriteFile(filepath.Join(policies, "p.yaml"), []byte(`apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-bad}
spec: {strategyId: 1, strategyName: block bad, clusterId: c1, ruleAction: 2, imageName: ["bad-*"]}
`), 0o600)
	cert, key := selfSignedCert(t, dir)
	factsFile := filepath.Join(dir, "facts.yaml")
	os.WriteFile(factsFile, []byte("images: {}\n"), 0o600)
	tokens := filepath.Join(dir, "tokens.csv")
	os.WriteFile(tokens, []byte("admin-secret,root,imagegate:admins\n"), 0o600)
	listen, apiListen, consoleListen := freePort(t), freePort(t), freePort(t)
	cmd := exec.Command(binary, "serve", "--policies", policies, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--listen", listen, "--metrics-listen", "", "--policy-poll-interval", "100ms", "--facts", factsFile,
		"--api-listen", apiListen, "--api-tokens", tokens, "--api-state", filepath.Join(dir, "iam.json"),
		"--audit-store", filepath.Join(dir, "audit.db"), "--audit-sync", "--console-listen", consoleListen)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	client := serveClient()
	waitReady(t, client, listen)
	if podAllowed(t, client, listen, "bad-image:1") {
		t.Fatal("bad-image admitted")
	}
	jar, _ := cookiejar.New(nil)
	client.Jar = jar
	base := "https://" + consoleListen
	do := func(method, path, ctype, body, csrf string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Origin", base)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if csrf != "" {
			req.Header.Set("X-Imagegate-Csrf", csrf)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if st, m := do("POST", "/api/login", "application/json", `{"token":"wrong"}`, ""); st != 401 {
		t.Fatalf("wrong token: %d %v", st, m)
	}
	st, m := do("POST", "/api/login", "application/json", `{"token":"admin-secret"}`, "")
	if st != 200 || m["principal"] != "root" {
		t.Fatalf("sign-in: %d %v", st, m)
	}
	csrf := m["csrf"].(string)
	st, m = do("GET", "/api/events?action=block", "", "", "")
	if evs, _ := m["events"].([]any); st != 200 || len(evs) != 1 || !strings.HasPrefix(evs[0].(map[string]any)["images"].([]any)[0].(map[string]any)["image"].(string), "bad-image") {
		t.Fatalf("events: %d %v", st, m)
	}
	if st, m = do("GET", "/api/stats", "", "", ""); st != 200 || m["totals"].(map[string]any)["block"] != 1.0 {
		t.Fatalf("stats: %d %v", st, m)
	}
	if st, m = do("GET", "/api/policies", "", "", ""); st != 200 || len(m["strategies"].([]any)) != 1 {
		t.Fatalf("policies: %d %v", st, m)
	}
	st, m = do("POST", "/api/check", "application/yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec: {containers: [{name: c, image: bad-image:2}]}\n", csrf)
	if rs, _ := m["results"].([]any); st != 200 || len(rs) != 1 || rs[0].(map[string]any)["allowed"] != false {
		t.Fatalf("check: %d %v", st, m)
	}
	resp, err := client.Get(base + "/")
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("index: %v %v", resp, err)
	}
	resp.Body.Close()
	stopServe(t, cmd)
}

func TestServeConsoleNeedsAPI(t *testing.T) {
	out, err := exec.Command(binary, "serve", "--policies", t.TempDir(), "--cluster-id", "c1", "--tls-cert-file", "x", "--tls-private-key-file", "y",
		"--console-listen", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--console-listen needs --api-listen") {
		t.Fatalf("%v: %s", err, out)
	}
}
