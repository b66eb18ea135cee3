package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/imagegate/imagegate/api"
	"github.com/imagegate/imagegate/kube"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
	"k8s.io/client-go/dynamic"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/client-go/rest"
)

// apiFlags are serve's management API flags.
type apiFlags struct {
	listen, tokens, state string
	maxBody               int64
	review                bool
	reviewServer          string
	reviewCA, reviewToken string
	keyFile               string
	// handler is the API once started: the console signs in through it.
	handler *api.Handler
}

// In-cluster service account files, the TokenReview defaults.
const (
	saCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
	saTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

func (f *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "api-listen", "", "address for the management API (TLS, the serving certificate); empty disables it")
	fs.StringVar(&f.tokens, "api-tokens", "", "CSV file of API bearer tokens: token,principal,group1|group2 (needs --api-listen)")
	fs.StringVar(&f.state, "api-state", "", "file holding IAM state: control, custom and trust policies, agencies, attachments (needs --api-listen)")
	fs.Int64Var(&f.maxBody, "api-max-body-bytes", api.DefaultMaxBodyBytes, "largest management API request body")
	fs.StringVar(&f.keyFile, "api-access-key-encryption-key-file", "", "32-byte key (raw, hex or base64) sealing access key secrets in --api-state; turns on access keys and signed calls")
	fs.BoolVar(&f.review, "api-token-review", false, "also accept Kubernetes tokens, checked with the API server's TokenReview")
	fs.StringVar(&f.reviewServer, "api-token-review-server", "", "API server URL for TokenReview (default: in-cluster, from KUBERNETES_SERVICE_HOST/PORT)")
	fs.StringVar(&f.reviewCA, "api-token-review-ca-file", saCAFile, "CA bundle of the API server for TokenReview")
	fs.StringVar(&f.reviewToken, "api-token-review-token-file", saTokenFile, "imagegate's own token for TokenReview (needs the system:auth-delegator role); re-read once a minute")
}

// check reports flag combinations that cannot work.
func (f *apiFlags) check() error {
	switch {
	case f.listen == "" && (f.tokens != "" || f.state != "" || f.review || f.keyFile != ""):
		return errors.New("--api-tokens, --api-token-review, --api-access-key-encryption-key-file and --api-state need --api-listen")
	case f.listen != "" && (f.state == "" || (f.tokens == "" && !f.review && f.keyFile == "")):
		return errors.New("--api-listen needs --api-state and --api-tokens, --api-token-review or --api-access-key-encryption-key-file")
	}
	return nil
}

// start serves the management API on its own listener until ctx ends;
// nothing when --api-listen is empty. Policy object writes go to what the
// webhook watches (the policy directory, or the custom resources with
// --policy-source=kube), so they govern the next admission once the
// watcher has seen them.
func (f *apiFlags) start(ctx context.Context, sf *serveFlags, client dynamic.Interface, certs *webhook.CertReloader, log *slog.Logger) error {
	if f.listen == "" {
		return nil
	}
	store, err := f.store(ctx, sf, client)
	if err != nil {
		return err
	}
	auth, err := f.authenticators(log)
	if err != nil {
		return err
	}
	opts := []api.Option{api.WithLogger(log.With("component", "api")), api.WithMaxBodyBytes(f.maxBody)}
	if f.keyFile != "" {
		sealer, err := api.LoadSealer(f.keyFile)
		if err != nil {
			return err
		}
		opts = append(opts, api.WithAccessKeys(sealer))
	}
	if fn := sf.audit.apiAuditor(); fn != nil {
		opts = append(opts, api.WithAuditor(fn))
	}
	h, err := api.NewHandler(store, auth, f.state, opts...)
	if err != nil {
		return err
	}
	f.handler = h
	return serveTLS(ctx, log, f.listen, "the management API", h, webhook.ServerTLSConfig(sf.listener.profile, certs))
}

// store is where the API's policy object writes go: the custom resources
// when the kube policy source is active (through client), else the
// --policies directory.
func (f *apiFlags) store(ctx context.Context, sf *serveFlags, client dynamic.Interface) (api.Store, error) {
	// The API writes only sets the webhook's engine compiles.
	compiles := func(snap *policy.Snapshot) error {
		_, err := rego.New(ctx, snap, rego.WithClusterID(sf.clusterID), rego.WithMaxScanAge(sf.maxScanAge))
		return err
	}
	if sf.kube.source == "kube" {
		return kube.NewStore(client, kube.WithCheck(compiles)), nil
	}
	if info, err := os.Stat(sf.policies); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("--api-listen: --policies %s must be a directory the API can write objects into", sf.policies)
	}
	return &api.DirStore{Dir: sf.policies, Check: compiles}, nil
}

// authenticators: the tokens file first, then TokenReview.
func (f *apiFlags) authenticators(log *slog.Logger) (api.Authenticators, error) {
	var auth api.Authenticators
	if f.tokens != "" {
		tokens, err := api.LoadTokens(f.tokens)
		if err != nil {
			return nil, err
		}
		tokens.OnReloadError = func(err error) {
			log.Error("tokens file not reloaded; the tokens in force stay", "error", err.Error())
		}
		tokens.OnRevoked = func(err error) {
			log.Error("tokens file deleted; its tokens are revoked", "error", err.Error())
		}
		auth = append(auth, tokens)
	}
	if !f.review {
		return auth, nil
	}
	server := f.reviewServer
	if server == "" {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, errors.New("--api-token-review: not in a cluster (KUBERNETES_SERVICE_HOST unset); set --api-token-review-server")
		}
		server = "https://" + net.JoinHostPort(host, port)
	}
	pem, err := os.ReadFile(f.reviewCA)
	if err != nil {
		return nil, fmt.Errorf("--api-token-review-ca-file: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--api-token-review-ca-file %s: no PEM certificates", f.reviewCA)
	}
	if _, err := os.Stat(f.reviewToken); err != nil {
		return nil, fmt.Errorf("--api-token-review-token-file: %w", err)
	}
	reviews, err := authnclient.NewForConfig(&rest.Config{
		Host: server, TLSClientConfig: rest.TLSClientConfig{CAData: pem},
		// client-go re-reads the file once a minute: projected tokens may
		// rotate, and the kubelet replaces them long before they expire.
		BearerTokenFile: f.reviewToken,
		UserAgent:       "imagegate", Timeout: 10 * time.Second,
		// Reviews are cached per token; those that are not cached answer
		// callers waiting now, so no client-side rate limit.
		QPS: -1,
	})
	if err != nil {
		return nil, fmt.Errorf("--api-token-review-server %s: %w", server, err)
	}
	return append(auth, &api.TokenReviewer{Reviews: reviews.TokenReviews(), TTL: api.DefaultTokenReviewTTL, Now: time.Now}), nil
}

// watchTokenFile loads a bearer token file (--scan-token-file,
// --audit-token-file) that is re-read when it changes; a deleted file
// revokes the token. Both are logged.
func watchTokenFile(flag, path, principal string, log *slog.Logger) (*api.TokenFile, error) {
	t, err := api.LoadTokenFile(flag, path, principal)
	if err != nil {
		return nil, err
	}
	t.OnReloadError = func(err error) {
		log.Error("token file not reloaded; the token in force stays", "flag", flag, "error", err.Error())
	}
	t.OnRevoked = func(err error) {
		log.Error("token file deleted; its token is revoked", "flag", flag, "error", err.Error())
	}
	return t, nil
}
