package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const blockStrategy = `apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-bad}
spec: {strategyId: 1, clusterId: c1, ruleAction: %d, imageName: ["bad-*"]}
`

// TestServePolicyReload runs the real binary: a policy change governs the next
// request, an invalid change is refused (and counted) while the last good
// snapshot stays, and SIGTERM shuts down cleanly.
func TestServePolicyReload(t *testing.T) {
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	write := func(body string) {
		t.Helper()
		tmp := filepath.Join(dir, "tmp.yaml")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(policies, "s.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(blockStrategy, 2))
	cert, key := selfSignedCert(t, dir)
	listen, metrics := freePort(t), freePort(t)
	cmd := exec.Command(binary, "serve", "--policies", policies, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--listen", listen, "--metrics-listen", metrics, "--policy-poll-interval", "100ms")
	var logs bytes.Buffer // complete once stopServe returns
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	client := serveClient()
	waitReady(t, client, listen)
	allowed := func() bool { return podAllowed(t, client, listen, "bad-app:1") }
	if allowed() {
		t.Fatal("bad-app admitted under a block strategy")
	}
	write(fmt.Sprintf(blockStrategy, 1)) // block -> alert
	waitFor(t, "the alert strategy to govern", allowed)
	write(fmt.Sprintf(blockStrategy, 7)) // invalid: the alert snapshot stays
	waitFor(t, "the invalid change to be counted", func() bool {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `imagegate_policy_loads_total{result="error"} 1`)
	})
	if !allowed() {
		t.Error("the last good snapshot was not kept")
	}
	stopServe(t, cmd)
	joined := logs.String()
	if !strings.Contains(joined, `"msg":"policy snapshot rejected; the last good one stays in force"`) || !strings.Contains(joined, "spec.ruleAction: 7 is not one of") {
		t.Errorf("logs lack the rejection with its reason:\n%s", joined)
	}
}

func TestServeFlagErrors(t *testing.T) {
	_, errOut, code := runCLI(t, "", "serve", "--policies", "examples/policies")
	if code != 2 || !strings.Contains(errOut, "required: --cluster-id, --tls-cert-file, --tls-private-key-file") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "", "serve", "--policies", "p", "--cluster-id", "c", "--tls-cert-file", "nope.crt", "--tls-private-key-file", "nope.key")
	if code != 2 || !strings.Contains(errOut, "nope.crt") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "", "serve", "--policies", "p", "--cluster-id", "c", "--tls-cert-file", "a", "--tls-private-key-file", "b", "--on-verification-error", "maybe")
	if code != 2 || !strings.Contains(errOut, `--on-verification-error "maybe"`) {
		t.Errorf("exit %d: %s", code, errOut)
	}
	// Flag mistakes are found before serve reads its certificate or touches a cluster.
	_, errOut, code = runCLI(t, "", "serve", "--policies", "p", "--cluster-id", "c", "--tls-cert-file", "nope.crt", "--tls-private-key-file", "nope.key", "--audit-retention", "0s")
	if code != 2 || !strings.Contains(errOut, "--audit-retention 0s") || strings.Contains(errOut, "nope.crt") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
