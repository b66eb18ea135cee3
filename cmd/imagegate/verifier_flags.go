package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/scan"

	"github.com/imagegate/imagegate/attestation"
	"github.com/prometheus/client_golang/prometheus"
)

// verifierFlags are the registry and cache flags shared by serve, check and
// verify.
type verifierFlags struct {
	scanIndex     scanIndexFlags
	insecure      stringList
	ttl, negative time.Duration
	staleIfError  time.Duration
	perRegistry   int
	fetches       int
	fetchesPerReq int
	maxBytes      int64
	maxReferrer   int64
	cacheBytes    int64
	tufCache      string
	scanAttestors stringList
}

func (v *verifierFlags) register(fs *flag.FlagSet) {
	v.scanIndex.register(fs)
	fs.Var(&v.insecure, "insecure-registries", "registries (host or host:port) that may be reached over plain HTTP; loopback ones always may")
	fs.DurationVar(&v.ttl, "verification-ttl", attestation.DefaultTTL, "how long a signature check is reused")
	fs.DurationVar(&v.negative, "verification-negative-ttl", attestation.DefaultNegativeTTL, "how long 'no signatures found' is reused")
	fs.DurationVar(&v.staleIfError, "stale-if-error", attestation.DefaultStaleIfError, "serve a cached verification this long past its TTL when the registry cannot be reached")
	fs.IntVar(&v.perRegistry, "registry-concurrency", attestation.DefaultPerRegistry, "concurrent requests to one registry")
	fs.IntVar(&v.fetches, "fetch-concurrency", attestation.DefaultFetchConcurrency, "images fetched from registries at once beyond each request's first, over all requests")
	fs.IntVar(&v.fetchesPerReq, "request-fetch-concurrency", attestation.DefaultRequestConcurrency, "images of one request fetched at once")
	fs.Int64Var(&v.maxBytes, "registry-max-response-bytes", attestation.DefaultMaxBytes, "largest registry response read")
	fs.Int64Var(&v.maxReferrer, "registry-max-referrer-bytes", attestation.DefaultMaxReferrerBytes, "bytes read of one image's referrers (Sigstore bundles); past it the rest are not read")
	fs.Int64Var(&v.cacheBytes, "verification-cache-bytes", attestation.DefaultCacheBytes, "bytes of signature material the verification cache holds (least recently used evicted)")
	fs.StringVar(&v.tufCache, "tuf-cache-dir", "", "where attestors with publicSigstore cache the public Sigstore TUF metadata and trusted root (default $HOME/.sigstore/root)")
	fs.Var(&v.scanAttestors, "scan-attestors", "attestors whose cosign vulnerability attestations (cosign attest --type vuln) count as scan results")
}

// factsSource is where facts come from: a static facts file, or live
// signature verification plus, with a scan store, its scans (the reader
// keeping them in memory, and the store to write to). The verifier is the
// live one's (nil with a facts file).
func factsSource(ctx context.Context, factsFile, scanStore string, st *stores, vf *verifierFlags, reg prometheus.Registerer, opts ...attestation.SourceOption) (facts.Source, *scan.Reader, scan.Store, *attestation.Verifier, error) {
	if factsFile != "" {
		if scanStore != "" {
			return nil, nil, nil, nil, errors.New("--facts and --scan-store exclude each other: a facts file holds every fact")
		}
		f, err := facts.LoadFile(factsFile)
		return f, nil, nil, nil, err
	}
	var scans facts.Source
	var reader *scan.Reader
	var store scan.Store
	if scanStore != "" {
		var log scan.ChangeLog
		var err error
		if store, log, err = st.scan(ctx, scanStore); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("--scan-store: %w", err)
		}
		ropts, err := vf.scanIndex.readerOptions()
		if err != nil {
			return nil, nil, nil, nil, err
		}
		if reg != nil {
			ropts = append(ropts, scan.WithReaderRegisterer(reg))
		}
		loaded := vf.scanIndex.loading()
		reader, err = scan.NewReader(ctx, log, ropts...)
		loaded()
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("--scan-store: %w", err)
		}
		scans = scan.NewSource(reader.Index())
	}
	v, err := vf.build(reg)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return attestation.NewSource(v, scans, opts...), reader, store, v, nil
}

func (v *verifierFlags) build(reg prometheus.Registerer) (*attestation.Verifier, error) {
	return attestation.New(
		attestation.WithInsecureRegistries(v.insecure...),
		attestation.WithCacheTTL(v.ttl), attestation.WithNegativeTTL(v.negative),
		attestation.WithStaleIfError(v.staleIfError), attestation.WithRegistryConcurrency(v.perRegistry),
		attestation.WithMaxResponseBytes(v.maxBytes), attestation.WithRegisterer(reg),
		attestation.WithAttestations(len(v.scanAttestors) > 0),
		attestation.WithMaxReferrerBytes(v.maxReferrer), attestation.WithCacheBytes(v.cacheBytes),
		attestation.WithTUFCacheDir(v.tufCache),
		attestation.WithFetchConcurrency(v.fetches, v.fetchesPerReq),
	)
}
