package main

import (
	"strings"
	"testing"
)

// Bad runtime flags exit 2 naming the flag, before serve touches a cluster.
func TestServeRuntimeFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		says string
	}{
		{[]string{"--runtime-compliance", "--runtime-action", "evict"}, `--runtime-action "evict": expected none or annotate`},
		{[]string{"--runtime-compliance", "--runtime-concurrency", "0"}, "--runtime-concurrency 0: expected a positive number"},
		{[]string{"--runtime-compliance", "--runtime-resync", "-1s"}, "--runtime-resync -1s: expected 0 or a positive duration"},
		{[]string{"--runtime-compliance", "--runtime-kube-events-qps", "0"}, "--runtime-kube-events-qps 0: expected a positive number"},
		{[]string{"--runtime-compliance", "--kubeconfig", "/nonexistent/kubeconfig"}, "--kubeconfig: stat /nonexistent/kubeconfig"},
		{[]string{"--kubeconfig", "/nonexistent/kubeconfig"}, "--kubeconfig needs --policy-source=kube, --kube-vulnerability-reports, --cert-bootstrap-secret or --runtime-compliance"},
	}
	for _, tt := range tests {
		t.Run(tt.says, func(t *testing.T) {
			dir := t.TempDir()
			cert, key := selfSignedCert(t, dir)
			args := append([]string{"serve", "--policies", "examples/policies", "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
				"--listen", "127.0.0.1:0", "--metrics-listen", ""}, tt.args...)
			_, errOut, code := runCLI(t, "", args...)
			if code != 2 || !strings.Contains(errOut, tt.says) {
				t.Errorf("exit %d %q, want 2 saying %q", code, errOut, tt.says)
			}
		})
	}
}
