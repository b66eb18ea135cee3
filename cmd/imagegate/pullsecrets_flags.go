package main

import (
	"context"
	"log/slog"

	"github.com/imagegate/imagegate/attestation"
	"github.com/imagegate/imagegate/kube"
	"k8s.io/client-go/dynamic"
)

// pullSecretOptions, when --kube-pull-secrets is on and imagegate talks to a
// cluster, starts watching pull secrets and service accounts and returns the
// facts source option that gives each request its pod's credentials, and
// the credentials themselves (for digest pinning). It must run after
// resolve; client is connect's; live says signatures are verified live (no
// --facts).
func (k *kubeFlags) pullSecretOptions(ctx context.Context, client dynamic.Interface, log *slog.Logger, live bool) ([]attestation.SourceOption, attestation.KeychainSource) {
	// Any feature that talks to the cluster (the policy resources, the
	// certificate bootstrap, a kubeconfig) brings a client; whatever the
	// policies' source, pods are then verified with their own credentials.
	if !live || !k.pullSecrets || client == nil {
		return nil, nil
	}
	ps := kube.NewPullSecrets(client, log)
	go ps.Run(ctx)
	return []attestation.SourceOption{attestation.WithPodCredentials(ps)}, ps
}
