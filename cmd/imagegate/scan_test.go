package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/audit"
)

func TestScanImportThenCheck(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "scans.db")
	policies := filepath.Join(dir, "p.yaml")
	os.WriteFile(policies, []byte("apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {name: crit}\nspec: {strategyId: 9, ruleAction: 2, alarmDetail: {vul: {riskLevel: [high]}}}\n"), 0o644)
	manifest := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: 'registry.example.com/shop/cart:2.1'}]}\n"

	if _, _, code := runCLI(t, manifest, "check", "--policies", policies, "--scan-store", store, "-"); code != 0 {
		t.Fatalf("before any import: exit %d", code)
	}
	out, errOut, code := runCLI(t, "", "scan", "import", "--store", store, "scan/testdata/trivy-full.json", "scan/testdata/malicious.txt", "scan/testdata/trivy-bad-severity.json")
	if code != 2 || !strings.Contains(out, "trivy-full.json: imported 1 scan(s)") || !strings.Contains(out, "malicious.txt: imported 0 scan(s), 2 malicious digest(s)") ||
		!strings.Contains(errOut, `trivy-bad-severity.json: Results[0].Vulnerabilities[0].Severity: unknown severity "SEVERE"`) {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = runCLI(t, manifest, "check", "--policies", policies, "--scan-store", store, "-")
	if code != 1 || !strings.Contains(out, `blocked by strategy 9 "crit": Vul CVE-2024-3094 (high)`) {
		t.Errorf("after import: exit %d\n%s", code, out)
	}
	if _, errOut, code := runCLI(t, manifest, "check", "--policies", policies, "--scan-store", store, "--facts", "examples/facts.yaml", "-"); code != 2 || !strings.Contains(errOut, "exclude each other") {
		t.Errorf("--facts with --scan-store: exit %d %s", code, errOut)
	}
}

func TestServeScansEndpoint(t *testing.T) {
	dir := t.TempDir()
	store, tokenFile := filepath.Join(dir, "scans.db"), filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	os.WriteFile(filepath.Join(policies, "p.yaml"), []byte("apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {name: crit}\nspec: {strategyId: 9, clusterId: c1, ruleAction: 2, alarmDetail: {vul: {riskLevel: [high]}}}\n"), 0o644)
	cert, key := selfSignedCert(t, dir)
	listen := freePort(t)
	cmd := exec.Command(binary, "serve", "--policies", policies, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--listen", listen, "--metrics-listen", "", "--scan-store", store, "--scan-token-file", tokenFile, "--scan-max-bytes", "100000",
		"--audit-store", filepath.Join(dir, "audit.db"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	client := serveClient()
	base := "https://" + listen
	waitReady(t, client, listen)
	report, _ := os.ReadFile("../../scan/testdata/trivy-full.json")
	post := func(token, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/scans", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		b, _ := json.Marshal(out)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		name, token, body string
		code              int
		msg               string
	}{
		{"no token", "", string(report), 401, "missing or wrong bearer token"},
		{"wrong token", "guess", string(report), 401, "missing or wrong bearer token"},
		{"truncated", "s3cret", string(report[:200]), 400, "not a Trivy JSON report"},
		{"oversized", "s3cret", strings.Repeat(" ", 100001), 413, "over 100000 bytes"},
		{"good", "s3cret", string(report), 200, `"imported":1`},
		{"backdated", "s3cret", strings.Replace(string(report), "2026-11-20T10:00:00", "2026-11-19T10:00:00", 1), 409, `"storedScanTime":"2026-11-20T10:00:00.123456789Z"`},
	} {
		if code, body := post(c.token, c.body); code != c.code || !strings.Contains(body, c.msg) {
			t.Errorf("%s: %d %s", c.name, code, body)
		}
	}
	if podAllowed(t, client, listen, "registry.example.com/shop/cart:2.1") {
		t.Error("the uploaded report did not govern the next admission")
	}
	// Every import with the token is an audit event of its principal.
	var codes []string
	waitFor(t, "four audited imports", func() bool {
		out, _, _ := runCLI(t, "", "events", "--store", filepath.Join(dir, "audit.db"), "--principal", "scan-token", "--action", "imagegate:ImportScan", "-o", "json")
		var page audit.Page
		json.Unmarshal([]byte(out), &page)
		codes = codes[:0]
		for _, ev := range page.Events {
			codes = append(codes, fmt.Sprint(ev.API.Status, ev.API.Code))
		}
		return len(codes) == 4
	})
	if strings.Join(codes, " ") != "409Conflict.StaleScan 200 413PayloadTooLarge 400InvalidParameter.Report" {
		t.Errorf("audited imports, newest first: %q", codes)
	}
	// The token file rotates without a restart, and deleting it revokes
	// the token (checked every 2 s).
	os.WriteFile(tokenFile, []byte("n3w\n"), 0o600)
	waitFor(t, "the rotated token", func() bool { code, _ := post("n3w", "{}"); return code == 400 })
	if code, body := post("s3cret", "{}"); code != 401 {
		t.Errorf("old token after rotation: %d %s", code, body)
	}
	os.Remove(tokenFile)
	waitFor(t, "the deleted token revoked", func() bool { code, _ := post("n3w", "{}"); return code == 401 })
}
