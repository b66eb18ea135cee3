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

// TestServeEmptyPolicySet runs the real binary: deleting every policy file
// is refused (ERROR log, metric, /readyz detail) and the block stays in
// force, unless --allow-empty-policies; starting without policies is
// allowed with a warning.
func TestServeEmptyPolicySet(t *testing.T) {
	cases := []struct {
		name       string
		allowEmpty bool
		startEmpty bool
		// after the deletion (or at start)
		blocked bool   // bad-app still refused
		metric  string // in /metrics
		readyz  string // in /readyz's body
		log     string // in the logs
	}{
		{"deletion refused", false, false, true, `imagegate_policy_reload_rejected_total{reason="empty"} 1`,
			"an empty set was refused; the last good set (1 policies and strategies) stays in force", `"level":"ERROR","msg":"policy snapshot rejected; the last good one stays in force"`},
		{"deletion allowed with --allow-empty-policies", true, false, false, `imagegate_policy_loads_total{result="ok"} 2`,
			"no BinarySecurityPolicy or OpaStrategy is loaded; every image is admitted", `"strategies":0`},
		{"starting empty warns", false, true, false, `imagegate_policy_loads_total{result="ok"} 1`,
			"no BinarySecurityPolicy or OpaStrategy is loaded; every image is admitted", `"level":"WARN","msg":"no BinarySecurityPolicy or OpaStrategy loaded: every image is admitted"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			policies := filepath.Join(dir, "policies")
			os.Mkdir(policies, 0o755)
			file := filepath.Join(policies, "s.yaml")
			if !c.startEmpty {
				os.WriteFile(file, fmt.Appendf(nil, blockStrategy, 2), 0o644)
			}
			cert, key := selfSignedCert(t, dir)
			listen, metrics := freePort(t), freePort(t)
			args := []string{"serve", "--policies", policies, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
				"--listen", listen, "--metrics-listen", metrics, "--policy-poll-interval", "100ms"}
			if c.allowEmpty {
				args = append(args, "--allow-empty-policies")
			}
			cmd := exec.Command(binary, args...)
			var logs bytes.Buffer
			cmd.Stderr = &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			client := serveClient()
			waitReady(t, client, listen)
			if !c.startEmpty {
				if podAllowed(t, client, listen, "bad-app:1") {
					t.Fatal("bad-app admitted under a block strategy")
				}
				os.Remove(file)
			}
			waitFor(t, c.metric, func() bool {
				resp, err := http.Get("http://" + metrics + "/metrics")
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return strings.Contains(string(b), c.metric)
			})
			if allowed := podAllowed(t, client, listen, "bad-app:1"); allowed == c.blocked {
				t.Errorf("bad-app admitted %v; want blocked %v", allowed, c.blocked)
			}
			resp, err := client.Get("https://" + listen + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), c.readyz) {
				t.Errorf("/readyz %d %q; want 200 and %q", resp.StatusCode, b, c.readyz)
			}
			stopServe(t, cmd)
			if !strings.Contains(logs.String(), c.log) {
				t.Errorf("logs lack %s:\n%s", c.log, logs.String())
			}
		})
	}
}
