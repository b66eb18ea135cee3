package main

import (
	"context"
	"log/slog"

	"github.com/imagegate/imagegate/attestation"
	"github.com/imagegate/imagegate/kube"
)

// pullSecretOptions, when --kube-pull-secrets is on and imagegate talks to a
// cluster, starts watching pull secrets and service accounts and returns the
// facts source option that gives each request its pod's credentials. It must
// run after resolve; live says signatures are verified live (no --facts).
func (k *kubeFlags) pullSecretOptions(ctx context.Context, log *slog.Logger, live bool) ([]attestation.SourceOption, error) {
	if !live || !k.pullSecrets || (k.source != "kube" && k.kubeconfig == "") {
		return nil, nil
	}
	client, err := k.client()
	if err != nil {
		return nil, err
	}
	ps := kube.NewPullSecrets(client, log)
	go ps.Run(ctx)
	return []attestation.SourceOption{attestation.WithPodCredentials(ps)}, nil
}
