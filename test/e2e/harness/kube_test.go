package harness

import (
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// The kubeconfigs the harness writes are read by client-go as meant: the
// server, the CA and either the client certificate or the token.
func TestWriteKubeconfig(t *testing.T) {
	// client-go reads the files a kubeconfig names: real ones.
	ca := NewCA(t, "kube")
	admin := ca.ClientCert(t, "admin", "e2e-admin", "system:masters")
	api := &APIServer{URL: "https://127.0.0.1:6443", CA: ca, Admin: admin}
	tests := []struct {
		name                             string
		opts                             []KubeconfigOption
		server, certFile, keyFile, token string
	}{
		{"admin", nil, api.URL, admin.CertFile, admin.KeyFile, ""},
		{"other server", []KubeconfigOption{KubeconfigServer("https://127.0.0.1:7000")}, "https://127.0.0.1:7000", admin.CertFile, admin.KeyFile, ""},
		{"token", []KubeconfigOption{KubeconfigToken("a.b.c")}, api.URL, "", "", "a.b.c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := api.WriteKubeconfig(t, tc.opts...)
			cfg, err := clientcmd.BuildConfigFromFlags("", path)
			if err != nil {
				t.Fatalf("client-go cannot load %s: %v", path, err)
			}
			if cfg.Host != tc.server || cfg.TLSClientConfig.CAFile != ca.CertFile || cfg.TLSClientConfig.CertFile != tc.certFile ||
				cfg.TLSClientConfig.KeyFile != tc.keyFile || cfg.BearerToken != tc.token {
				t.Errorf("loaded host %q CA %q cert %q key %q token %q; want %q %q %q %q %q", cfg.Host, cfg.TLSClientConfig.CAFile,
					cfg.TLSClientConfig.CertFile, cfg.TLSClientConfig.KeyFile, cfg.BearerToken, tc.server, ca.CertFile, tc.certFile, tc.keyFile, tc.token)
			}
		})
	}
}
