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

// TestServeWarnsAtLoad runs the real serve: a --cluster-id no policy names
// is said at WARN, at /readyz (still ready) and by a gauge, which drops to
// 0 once a policy names the cluster; the version is in the startup log and
// in imagegate_build_info.
func TestServeWarnsAtLoad(t *testing.T) {
	cases := []struct {
		name      string
		policy    string // "" : an empty directory
		readyz    string
		unnamed   string
		empty     string
		logWarned string
	}{
		{"empty directory", "", "warning: no Attestor, BinarySecurityPolicy or OpaStrategy was found", "1", "1", "every image is allowed"},
		{"cluster id typo", fmt.Sprintf(strings.Replace(blockStrategy, "clusterId: c1", "clusterId: prod-cluster", 1), 2),
			`warning: cluster id "prod-clustr" is named by no BinarySecurityPolicy or OpaStrategy (they name "prod-cluster")`, "1", "0", `is named by no BinarySecurityPolicy`},
		{"named", fmt.Sprintf(strings.Replace(blockStrategy, "clusterId: c1", "clusterId: prod-clustr", 1), 2), "", "0", "0", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			policies := filepath.Join(dir, "policies")
			os.Mkdir(policies, 0o755)
			if c.policy != "" {
				writeFiles(t, policies, map[string]string{"s.yaml": c.policy})
			}
			cert, key := selfSignedCert(t, dir)
			listen, metrics := freePort(t), freePort(t)
			cmd := exec.Command(binary, "serve", "--policies", policies, "--cluster-id", "prod-clustr", "--tls-cert-file", cert, "--tls-private-key-file", key,
				"--listen", listen, "--metrics-listen", metrics, "--facts", "examples/facts.yaml")
			cmd.Dir = "../.."
			var logs bytes.Buffer
			cmd.Stderr = &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			client := serveClient()
			waitReady(t, client, listen)
			resp, err := client.Get("https://" + listen + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "ok\n") {
				t.Errorf("/readyz %d %q", resp.StatusCode, body)
			}
			if c.readyz != "" && !strings.Contains(string(body), c.readyz) {
				t.Errorf("/readyz %q lacks %q", body, c.readyz)
			}
			if c.readyz == "" && strings.Contains(string(body), "warning") {
				t.Errorf("/readyz warns: %q", body)
			}
			mresp, err := http.Get("http://" + metrics + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			m, _ := io.ReadAll(mresp.Body)
			mresp.Body.Close()
			for _, want := range []string{"imagegate_policy_cluster_unnamed " + c.unnamed, "imagegate_policy_empty " + c.empty, `imagegate_build_info{goversion="go`} {
				if !strings.Contains(string(m), want) {
					t.Errorf("metrics lack %q", want)
				}
			}
			stopServe(t, cmd)
			l := logs.String()
			if !strings.Contains(l, `"msg":"imagegate starting"`) || !strings.Contains(l, `"revision":`) {
				t.Errorf("no version in the startup log:\n%s", l)
			}
			warned := strings.Contains(l, `"level":"WARN","msg":"policy snapshot: `)
			if c.logWarned != "" && (!warned || !strings.Contains(l, c.logWarned)) {
				t.Errorf("no WARN with %q:\n%s", c.logWarned, l)
			}
			if c.logWarned == "" && warned {
				t.Errorf("warned for a named cluster:\n%s", l)
			}
		})
	}
}
