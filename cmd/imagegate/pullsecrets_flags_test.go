package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// TestPullSecretOptions: pod credentials are used exactly when imagegate
// talks to a cluster, verifies live and --kube-pull-secrets is on.
func TestPullSecretOptions(t *testing.T) {
	// Nothing is contacted before the informers start, and the test's
	// context ends them at once.
	kubeconfig := unreachableKubeconfig(t, t.TempDir())
	base := []string{"--cluster-id", "c", "--tls-cert-file", "c.pem", "--tls-private-key-file", "k.pem"}
	tests := []struct {
		name string
		args []string
		live bool
		want bool
	}{
		{"kube source", []string{"--kubeconfig", kubeconfig}, true, true},
		{"file policies, kubeconfig for certificates", []string{"--policies", "d", "--kubeconfig", kubeconfig, "--cert-bootstrap-secret", "s"}, true, true},
		{"policy bundle, kubeconfig for certificates", []string{"--policy-source", "oci://registry.example/policies:v1", "--policy-key", "k.pub", "--kubeconfig", kubeconfig, "--cert-bootstrap-secret", "s"}, true, true},
		{"turned off", []string{"--kubeconfig", kubeconfig, "--kube-pull-secrets=false"}, true, false},
		{"facts file", []string{"--kubeconfig", kubeconfig}, false, false},
		{"no cluster", []string{"--policies", "d"}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			f, _ := parseServeFlags(append(append([]string{}, base...), tc.args...), &stderr)
			if f == nil {
				t.Fatalf("flags refused: %s", stderr.String())
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			client, err := f.kube.connect(tc.live)
			if err != nil {
				t.Fatal(err)
			}
			opts, keychains := f.kube.pullSecretOptions(ctx, client, slog.New(slog.DiscardHandler), tc.live)
			if got := len(opts) > 0; got != tc.want || (keychains != nil) != tc.want {
				t.Errorf("pod credentials used: %v, want %v", got, tc.want)
			}
		})
	}
}

// In a cluster a bundle (or file) source with the certificate bootstrap has a
// client from the in-cluster configuration and no --kubeconfig: pods'
// credentials are used then too. Outside a pod there is no in-cluster
// configuration, so the client is given directly.
func TestPullSecretOptionsAnyClient(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		{Version: "v1", Resource: "secrets"}:         "SecretList",
		{Version: "v1", Resource: "serviceaccounts"}: "ServiceAccountList",
	})
	k := &kubeFlags{source: "oci", pullSecrets: true}
	if opts, keychains := k.pullSecretOptions(ctx, client, slog.New(slog.DiscardHandler), true); len(opts) == 0 || keychains == nil {
		t.Error("a bundle source with a cluster client does not use pods' credentials")
	}
	if opts, _ := k.pullSecretOptions(ctx, nil, slog.New(slog.DiscardHandler), true); len(opts) != 0 {
		t.Error("pods' credentials used without a cluster client")
	}
}
