package main

import (
	"flag"
	"time"

	"github.com/imagegate/imagegate/attestation"
	"github.com/prometheus/client_golang/prometheus"
)

// verifierFlags are the registry and cache flags shared by serve, check and
// verify.
type verifierFlags struct {
	insecure      stringList
	ttl, negative time.Duration
	staleIfError  time.Duration
	perRegistry   int
	maxBytes      int64
}

func (v *verifierFlags) register(fs *flag.FlagSet) {
	fs.Var(&v.insecure, "insecure-registries", "registries (host or host:port) that may be reached over plain HTTP; loopback ones always may")
	fs.DurationVar(&v.ttl, "verification-ttl", attestation.DefaultTTL, "how long a signature check is reused")
	fs.DurationVar(&v.negative, "verification-negative-ttl", attestation.DefaultNegativeTTL, "how long 'no signatures found' is reused")
	fs.DurationVar(&v.staleIfError, "stale-if-error", attestation.DefaultStaleIfError, "serve a cached verification this long past its TTL when the registry cannot be reached")
	fs.IntVar(&v.perRegistry, "registry-concurrency", attestation.DefaultPerRegistry, "concurrent requests to one registry")
	fs.Int64Var(&v.maxBytes, "registry-max-response-bytes", attestation.DefaultMaxBytes, "largest registry response read")
}

func (v *verifierFlags) build(reg prometheus.Registerer) (*attestation.Verifier, error) {
	return attestation.New(
		attestation.WithInsecureRegistries(v.insecure...),
		attestation.WithCacheTTL(v.ttl), attestation.WithNegativeTTL(v.negative),
		attestation.WithStaleIfError(v.staleIfError), attestation.WithRegistryConcurrency(v.perRegistry),
		attestation.WithMaxResponseBytes(v.maxBytes), attestation.WithRegisterer(reg),
	)
}
