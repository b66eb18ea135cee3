package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeKubeFlags(t *testing.T) {
	base := []string{"--cluster-id", "c", "--tls-cert-file", "c.pem", "--tls-private-key-file", "k.pem"}
	tests := []struct {
		name       string
		args       []string
		wantSource string
		wantErr    string
	}{
		{"policies: file", []string{"--policies", "dir"}, "file", ""},
		{"kubeconfig alone: kube", []string{"--kubeconfig", "kc"}, "kube", ""},
		{"in-cluster", []string{"--policy-source=kube"}, "kube", ""},
		{"nothing", nil, "", "required: --policies (or --policy-source=kube)"},
		{"both", []string{"--policy-source=kube", "--policies", "dir"}, "", "--policies and --policy-source=kube exclude each other"},
		{"kubeconfig with files", []string{"--policies", "dir", "--kubeconfig", "kc"}, "", "--kubeconfig needs --policy-source=kube, --kube-vulnerability-reports, --cert-bootstrap-secret or --runtime-compliance"},
		{"reports with files", []string{"--policies", "dir", "--kubeconfig", "kc", "--kube-vulnerability-reports", "--scan-store", "s.db"}, "file", ""},
		{"reports without a store", []string{"--kubeconfig", "kc", "--kube-vulnerability-reports"}, "", "--kube-vulnerability-reports needs --scan-store"},
		{"cert bootstrap", []string{"--policy-source=kube", "--cert-bootstrap-secret", "imagegate-tls"}, "kube", ""},
		{"renewal after expiry", []string{"--policy-source=kube", "--cert-bootstrap-secret", "s", "--cert-bootstrap-validity", "24h", "--cert-bootstrap-renew-before", "48h"}, "", "--cert-bootstrap-renew-before must be shorter"},
		{"unknown source", []string{"--policy-source=etcd"}, "", `--policy-source "etcd": expected file, kube or oci://REF`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			f, code := parseServeFlags(append(append([]string{}, base...), tc.args...), &stderr)
			if tc.wantErr != "" {
				if f != nil || code != exitBadUsage || !strings.Contains(stderr.String(), tc.wantErr) {
					t.Fatalf("code %d, stderr %q; want exit %d and %q", code, stderr.String(), exitBadUsage, tc.wantErr)
				}
				return
			}
			if f == nil || f.kube.source != tc.wantSource {
				t.Fatalf("flags %+v, stderr %q; want source %s", f, stderr.String(), tc.wantSource)
			}
		})
	}
}

// TestKubeConnect: serve builds its cluster client once, before the
// features, and only when one of them needs it, so a file-only serve runs
// outside a cluster.
func TestKubeConnect(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a cluster
	dir := t.TempDir()
	kubeconfig := unreachableKubeconfig(t, dir)
	base := []string{"--cluster-id", "c", "--tls-cert-file", "c.pem", "--tls-private-key-file", "k.pem"}
	tests := []struct {
		name       string
		args       []string
		wantClient bool
		wantErr    string
	}{
		{"policy files only: no cluster", []string{"--policies", dir}, false, ""},
		{"kube source", []string{"--kubeconfig", kubeconfig}, true, ""},
		{"kube source with facts", []string{"--kubeconfig", kubeconfig, "--facts", "f.yaml"}, true, ""},
		{"reports with files", []string{"--policies", dir, "--kubeconfig", kubeconfig, "--kube-vulnerability-reports", "--scan-store", "s.db"}, true, ""},
		{"cert bootstrap with files", []string{"--policies", dir, "--kubeconfig", kubeconfig, "--cert-bootstrap-secret", "tls"}, true, ""},
		{"in-cluster outside a cluster", []string{"--policy-source=kube"}, false, "--kubeconfig: "},
		{"cert bootstrap in-cluster outside a cluster", []string{"--policies", dir, "--cert-bootstrap-secret", "tls"}, false, "--kubeconfig: "},
		{"missing kubeconfig", []string{"--kubeconfig", filepath.Join(dir, "nope")}, false, "--kubeconfig: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			f, _ := parseServeFlags(append(append([]string{}, base...), tc.args...), &stderr)
			if f == nil {
				t.Fatalf("flags refused: %s", stderr.String())
			}
			client, err := f.kube.connect(f.factsFile == "")
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one starting %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || (client != nil) != tc.wantClient {
				t.Fatalf("client %v, err %v; want a client: %v", client, err, tc.wantClient)
			}
		})
	}
}
