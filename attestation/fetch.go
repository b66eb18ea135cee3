package attestation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// signatures fetches (once per digest, shared by every attestor and every
// concurrent request) the image's cosign signatures.
// key is repo@digest, built by the caller from its parsed reference.
func (v *Verifier) signatures(ctx context.Context, pl pullerFunc, scope string, repo name.Repository, key, digest string) (*signatures, string, error) {
	ttl := func(s *signatures) time.Duration {
		if len(s.legacy) == 0 && len(s.bundles) == 0 && s.legacyErr == nil {
			return v.opts.negativeTTL
		}
		return v.opts.ttl
	}
	s, status, err := v.sigs.get(ctx, key, scope, ttl, func(ctx context.Context) (*signatures, error) {
		release, err := v.fetchSlot(ctx, "fetching signatures")
		if err != nil {
			return nil, err
		}
		defer release()
		p, err := pl()
		if err != nil {
			return nil, &UnverifiableError{Reason: "registry credentials: " + err.Error(), Err: err}
		}
		if _, err := v1.NewHash(digest); err != nil {
			return nil, &VerificationError{Reason: fmt.Sprintf("malformed digest %q", digest)}
		}
		// Bundles (OCI referrers) are looked up alongside the .sig tag, so
		// supporting both formats costs no extra round trip of latency.
		// So are the .att attestations, when scan attestors are in use.
		s := &signatures{verdict: map[string]error{}, vuln: map[string]VulnAttestation{}}
		var berr, aerr error
		var wg sync.WaitGroup
		wg.Go(func() { s.bundles, s.attBundles, berr = v.fetchBundles(ctx, p, repo, digest) })
		if v.opts.attestations {
			wg.Go(func() { s.attestations, aerr = v.fetchLayers(ctx, p, repo, digest, ".att") })
		}
		var lerr error
		s.legacy, lerr = v.fetchLayers(ctx, p, repo, digest, ".sig")
		wg.Wait()
		if ctx.Err() != nil {
			return nil, timedOut(ctx, "fetching signatures", nil)
		}
		for _, err := range []error{lerr, berr, aerr} {
			if _, ok := err.(*UnverifiableError); ok {
				return nil, err
			}
		}
		// What the registry served but cannot be used is remembered like
		// any material, so a hostile registry is not asked again per
		// admission.
		s.legacyErr, s.attErr = lerr, aerr
		s.legacyOwners, s.bundleOwners = make([]owner, len(s.legacy)), make([]owner, len(s.bundles))
		s.size = s.bytes()
		return s, nil
	})
	v.metrics.cache.WithLabelValues("signatures", status).Inc()
	return s, status, err
}

func (s *signatures) bytes() int64 {
	n := int64(256)
	for i := range s.legacy {
		n += s.legacy[i].size()
	}
	for i := range s.attestations {
		n += s.attestations[i].size()
	}
	// A parsed bundle holds about twice its JSON.
	for _, b := range s.bundles {
		n += 2 * b.raw
	}
	for _, b := range s.attBundles {
		n += 2 * b.raw
	}
	return n
}

// fetchLayers reads the layers of cosign's sha256-<hex>.sig (or .att) image:
// their annotations and payloads. Signers of one image sign the same
// payload, so layers share blobs: each distinct blob is fetched once.
func (v *Verifier) fetchLayers(ctx context.Context, p *remote.Puller, repo name.Repository, digest, suffix string) ([]legacySig, error) {
	algo, hexPart, _ := strings.Cut(digest, ":")
	what := "signatures"
	if suffix == ".att" {
		what = "attestations"
	}
	desc, err := p.Get(ctx, repo.Tag(algo+"-"+hexPart+suffix))
	if err != nil {
		if isNotFound(err) {
			return nil, nil // none: a verdict, cached briefly
		}
		return nil, registryError("fetching "+what, err)
	}
	m, blob, err := imageLayers(ctx, p, repo, desc)
	if err != nil {
		return nil, registryError("reading "+what, err)
	}
	if len(m.Layers) > v.opts.maxLayers {
		return nil, &VerificationError{Reason: fmt.Sprintf("the %s image has %d layers, more than the %d imagegate reads", what, len(m.Layers), v.opts.maxLayers)}
	}
	out := make([]legacySig, 0, len(m.Layers))
	payloads := map[string]*sharedClaims{}
	var usual []byte
	if suffix == ".sig" {
		usual = usualPayload(repo, digest)
	}
	for _, l := range m.Layers {
		c, ok := payloads[l.Digest.String()]
		if !ok {
			pl := usual
			if !sameBlob(l, usual) {
				var err error
				if pl, err = blob(l); err != nil {
					return nil, registryError("fetching a "+strings.TrimSuffix(what, "s")+" payload", err)
				}
			}
			c = &sharedClaims{payload: pl}
			payloads[l.Digest.String()] = c
		}
		s := newLegacySig(l.Annotations, c.payload)
		if suffix == ".sig" {
			s.claims = c
		}
		out = append(out, s)
	}
	return out, nil
}

// usualPayload is the simple-signing payload `cosign sign` writes for an
// image of repo by default (no annotations, no claimed identity): its bytes
// are known before they are fetched. nil if it cannot be built.
func usualPayload(repo name.Repository, digest string) []byte {
	b, err := (&payload.Cosign{Image: repo.Digest(digest)}).MarshalJSON()
	if err != nil {
		return nil
	}
	return b
}

// sameBlob reports whether b is the blob l describes: its size and SHA-256
// digest. Content addressing makes b exactly what the registry would serve
// for l, so the fetch (a round trip after the manifest's) is skipped. A
// payload with annotations or another identity is fetched as before.
func sameBlob(l v1.Descriptor, b []byte) bool {
	if b == nil || l.Digest.Algorithm != "sha256" || l.Size != int64(len(b)) {
		return false
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]) == l.Digest.Hex
}

// imageLayers parses an image manifest the registry served and returns it
// with a reader of its layers' blobs. ggcr's remote image would parse the
// manifest again for every use of it (three times to read one payload: a
// tenth of a cold verification's CPU for a four-signature image). The blobs
// are read from the repository and checked against the manifest's digest
// and size, as ggcr checks them; unlike ggcr's image, the reader does not
// follow a descriptor's foreign URLs to other hosts. An index (or an old
// schema) still goes through ggcr's image, which picks the platform image
// as cosign's reader does (or refuses it).
func imageLayers(ctx context.Context, p *remote.Puller, repo name.Repository, desc *remote.Descriptor) (*v1.Manifest, func(v1.Descriptor) ([]byte, error), error) {
	var m *v1.Manifest
	var err error
	if desc.MediaType.IsIndex() || desc.MediaType.IsSchema1() {
		var img v1.Image
		if img, err = desc.Image(); err == nil {
			m, err = img.Manifest()
		}
	} else {
		m, err = v1.ParseManifest(bytes.NewReader(desc.Manifest))
	}
	if err != nil {
		return nil, nil, err
	}
	return m, func(l v1.Descriptor) ([]byte, error) {
		layer, err := p.Layer(ctx, repo.Digest(l.Digest.String()))
		if err != nil {
			return nil, err
		}
		b, err := readLayer(layer)
		if err == nil && int64(len(b)) != l.Size {
			err = fmt.Errorf("blob %s has %d bytes, the manifest says %d", l.Digest, len(b), l.Size)
		}
		return b, err
	}, nil
}

func readLayer(l interface{ Compressed() (io.ReadCloser, error) }) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// registryError classifies a registry failure. Only a failure to talk to
// the registry is "could not verify": no connection, a timeout, throttling,
// a server error, or refused credentials. Anything else the registry
// actually answered (a missing tag, a malformed or oversized manifest, a
// blob that does not match its digest) is the image's material and does not
// verify: a deny, whatever --on-verification-error says.
func registryError(what string, err error) error {
	var te *transport.Error
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return &UnverifiableError{Reason: what + ": timeout", Err: err}
	case errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden):
		return &UnverifiableError{Reason: what + ": registry refused access (auth)", Err: err}
	case errors.As(err, &te) && (te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500):
		return &UnverifiableError{Reason: what + ": registry unreachable or failing", Err: err}
	case errors.As(err, &te):
		return &VerificationError{Reason: fmt.Sprintf("%s: registry answered %d", what, te.StatusCode)}
	case errors.Is(err, errTooLarge):
		return &VerificationError{Reason: what + ": " + err.Error()}
	case errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, errPlainHTTP):
		return &UnverifiableError{Reason: what + ": registry unreachable or failing", Err: err}
	}
	return &VerificationError{Reason: what + ": " + err.Error()}
}

func isNotFound(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return true
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return true
			}
		}
	}
	return false
}
