package attestation

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Sigstore bundles are what cosign stores with --new-bundle-format (the
// default from cosign v3): an OCI 1.1 referrer of the image, found through
// the registry's referrers API or, on registries without it, the referrers
// tag sha256-<hex>. The bundle's DSSE envelope signs an in-toto statement
// whose subject is the image digest.
const bundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// fetchBundles reads the image's Sigstore bundle referrers, concurrently
// (within the per-registry limit), bounded by bytes rather than by a count:
// junk referrers pushed before a valid bundle must not hide it. Bundles
// sigstore-go refuses are skipped, as cosign skips them. Signature bundles
// and attestation bundles (other predicate types) are returned apart.
func (v *Verifier) fetchBundles(ctx context.Context, p *remote.Puller, repo name.Repository, digest string) (sigs, atts []sigBundle, err error) {
	m, err := v.referrers(ctx, p, repo, digest)
	if err != nil || m == nil {
		return nil, nil, err
	}
	var todo []string
	for _, desc := range m.Manifests {
		if mayBeBundle(desc.ArtifactType) {
			todo = append(todo, desc.Digest.String())
		}
	}
	raws := make([][]byte, len(todo))
	errs := make([]error, len(todo))
	// Past the byte budget the rest is not read; what was read still counts.
	var budget atomic.Int64
	budget.Store(v.opts.maxReferrerBytes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, v.opts.perRegistry)
	for i, d := range todo {
		if budget.Load() <= 0 {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			raws[i], errs[i] = v.readBundle(ctx, p, repo, d)
			budget.Add(-int64(len(raws[i])))
		})
	}
	wg.Wait()
	for i := range todo {
		// A referrer the registry cannot serve leaves the image unjudged;
		// one it serves that is not a bundle is skipped, as cosign skips it.
		if _, ok := errs[i].(*UnverifiableError); ok {
			return nil, nil, errs[i]
		}
		if errs[i] != nil || raws[i] == nil {
			continue
		}
		b, err := parseBundle(raws[i])
		if err != nil {
			continue
		}
		// A message-signature bundle is no image signature either; it is
		// listed with the signatures so the refusal says why.
		if b.predicate == signPredicateType || b.b.GetMessageSignature() != nil {
			sigs = append(sigs, b)
		} else {
			atts = append(atts, b)
		}
	}
	return sigs, atts, nil
}

// readBundle fetches a bundle referrer's manifest and its bundle layer.
func (v *Verifier) readBundle(ctx context.Context, p *remote.Puller, repo name.Repository, manifestDigest string) ([]byte, error) {
	desc, err := p.Get(ctx, repo.Digest(manifestDigest))
	if err != nil {
		return nil, registryError("fetching a signature bundle", err)
	}
	m, blob, err := imageLayers(ctx, p, repo, desc)
	if err != nil {
		return nil, registryError("reading a signature bundle", err)
	}
	for _, l := range m.Layers {
		if string(l.MediaType) != bundleArtifactType {
			continue
		}
		b, err := blob(l)
		if err != nil {
			return nil, registryError("fetching a signature bundle", err)
		}
		return b, nil
	}
	return nil, nil // another kind of artifact
}

// mayBeBundle: cosign v2 (and registries that derive a referrer's type from
// its config) list bundles with the empty config's media type, so only
// referrers of another declared type are skipped unread.
func mayBeBundle(artifactType string) bool {
	switch artifactType {
	case bundleArtifactType, "", "application/vnd.oci.empty.v1+json":
		return true
	}
	return false
}

// referrers lists the image's referrers: through the registry's referrers
// API, or on a registry without it (distribution 2.8) the referrers tag
// sha256-<hex>. Until a registry's answer is remembered (referrersAPI) both
// are asked at once, so a registry without the API costs one round trip,
// not two; after that only the one it serves is asked. nil: no referrers.
func (v *Verifier) referrers(ctx context.Context, p *remote.Puller, repo name.Repository, digest string) (*v1.IndexManifest, error) {
	host := repo.RegistryStr()
	api, known := v.referrersAPI.get(host)
	if known && !api {
		return v.referrersTag(ctx, p, repo, digest)
	}
	type answer struct {
		m   *v1.IndexManifest
		err error
	}
	var tag chan answer
	if !known {
		// Not known yet: the tag fallback is asked alongside the API, so a
		// registry without it costs no extra round trip.
		tag = make(chan answer, 1)
		go func() {
			m, err := v.referrersTag(ctx, p, repo, digest)
			tag <- answer{m: m, err: err}
		}()
	}
	idx, err := remote.Referrers(repo.Digest(digest), remote.Reuse(p), remote.WithContext(ctx))
	switch {
	case err == nil:
		v.referrersAPI.put(host, true)
		m, err := idx.IndexManifest()
		if err != nil {
			return nil, registryError("reading referrers", err)
		}
		return m, nil
	case !noReferrersAPI(err):
		return nil, registryError("listing signature bundles (referrers)", err)
	}
	v.referrersAPI.put(host, false)
	if tag == nil { // the registry stopped serving the API
		return v.referrersTag(ctx, p, repo, digest)
	}
	a := <-tag
	return a.m, a.err
}

// referrersTag reads the referrers tag schema's index (sha256-<hex>), the
// fallback for registries without the referrers API.
func (v *Verifier) referrersTag(ctx context.Context, p *remote.Puller, repo name.Repository, digest string) (*v1.IndexManifest, error) {
	algo, hexPart, _ := strings.Cut(digest, ":")
	idx, err := p.Get(ctx, repo.Tag(algo+"-"+hexPart))
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, registryError("listing signature bundles (referrers tag)", err)
	}
	m, err := v1.ParseIndexManifest(bytes.NewReader(idx.Manifest))
	if err != nil {
		return nil, registryError("listing signature bundles (referrers tag)", err)
	}
	return m, nil
}

// noReferrersAPI reports a registry without the referrers API: it answers
// with a client error other than throttling or refused credentials, or
// with something other than an index.
func noReferrersAPI(err error) bool {
	return noReferrers(err) || strings.Contains(err.Error(), "does not support the Referrers API")
}

// noReferrers reports a registry that answers the referrers API with a
// client error other than throttling: it has no bundles to offer, which is
// not a reason to fail verification of signatures found elsewhere.
func noReferrers(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode >= 400 && te.StatusCode < 500 &&
		te.StatusCode != http.StatusTooManyRequests && te.StatusCode != http.StatusUnauthorized && te.StatusCode != http.StatusForbidden
}
