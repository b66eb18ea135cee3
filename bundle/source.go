package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imagegate/imagegate/attestation"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// Verifier checks an image's signatures against attestors: the same
// verification admission applies to images.
type Verifier interface {
	Verify(ctx context.Context, img workload.Image, attestors []*policy.Attestor) attestation.Result
}

var _ Verifier = (*attestation.Verifier)(nil)

// UnverifiedError says a bundle's digest is not signed as the attestor
// requires: unsigned, another key, or a signature of another digest.
type UnverifiedError struct {
	Digest string
	Reason string
}

func (e *UnverifiedError) Error() string {
	return fmt.Sprintf("policy bundle %s: signature not verified: %s", e.Digest, e.Reason)
}

// FetchError says the registry could not be read (unreachable, timeout,
// authentication): nothing is known about the bundle.
type FetchError struct {
	What string
	Err  error
}

func (e *FetchError) Error() string { return fmt.Sprintf("policy bundle: %s: %v", e.What, e.Err) }
func (e *FetchError) Unwrap() error { return e.Err }

// MalformedError says a verified digest names something that is not a
// policy bundle, or whose blobs do not match the manifest.
type MalformedError struct {
	Digest string
	Reason string
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("policy bundle %s: %s", e.Digest, e.Reason)
}

// Source reads one bundle reference, verified with one attestor.
type Source struct {
	ref      name.Reference
	attestor *policy.Attestor
	verifier Verifier
	o        options
	// puller is kept for the source's life: polling reuses its connection
	// and registry token instead of pinging the registry every time.
	puller *remote.Puller
}

// NewSource reads ref (oci://REGISTRY/REPOSITORY:TAG, or @sha256:…)
// verified against attestor, which must come from local configuration: an
// attestor taken from a bundle would let the bundle vouch for itself.
func NewSource(ref string, attestor *policy.Attestor, v Verifier, opts ...Option) (*Source, error) {
	o := apply(opts)
	if err := o.validate(); err != nil {
		return nil, err
	}
	if attestor == nil || v == nil {
		return nil, errors.New("policy bundle: an attestor and a verifier are required")
	}
	r, err := ParseRef(ref, o.insecure...)
	if err != nil {
		return nil, err
	}
	p, err := remote.NewPuller(o.remote...)
	if err != nil {
		return nil, err
	}
	return &Source{ref: r, attestor: attestor, verifier: v, o: o, puller: p}, nil
}

// Ref is the reference read, without oci://.
func (s *Source) Ref() string { return s.ref.String() }

func (s *Source) remote(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.Reuse(s.puller)}
}

// Resolve returns the digest the reference names now.
func (s *Source) Resolve(ctx context.Context) (name.Digest, error) {
	if d, ok := s.ref.(name.Digest); ok {
		return d, nil
	}
	desc, err := remote.Head(s.ref, s.remote(ctx)...)
	if err != nil {
		return name.Digest{}, &FetchError{What: "resolving " + s.ref.String(), Err: err}
	}
	return s.ref.Context().Digest(desc.Digest.String()), nil
}

// Load verifies d's signature and then reads and validates the bundle of
// exactly that digest. Nothing of the bundle is read before its signature
// verified, and every blob read is checked against its digest.
func (s *Source) Load(ctx context.Context, d name.Digest) (*Bundle, error) {
	res := s.verifier.Verify(ctx, workload.ParseImage(d.String()), []*policy.Attestor{s.attestor})
	if len(res.Attestors) != 1 {
		return nil, &UnverifiedError{Digest: d.DigestStr(), Reason: "no verdict"}
	}
	switch a := res.Attestors[0]; a.Outcome {
	case attestation.Verified:
	case attestation.Unverifiable:
		return nil, &FetchError{What: "verifying the signature of " + d.String(), Err: errors.New(a.Reason)}
	default:
		return nil, &UnverifiedError{Digest: d.DigestStr(), Reason: a.Reason}
	}
	if res.Digest != d.DigestStr() {
		return nil, &UnverifiedError{Digest: d.DigestStr(), Reason: "the verified digest is " + res.Digest}
	}
	m, raw, err := s.manifest(ctx, d)
	if err != nil {
		return nil, err
	}
	files, err := s.files(ctx, d, m)
	if err != nil {
		return nil, err
	}
	snap, err := policy.LoadFiles(files)
	if err != nil {
		return nil, &InvalidError{Where: d.String(), Err: err}
	}
	h, _ := v1.NewHash(d.DigestStr())
	return &Bundle{Manifest: raw, Digest: h, Files: files, Snapshot: snap}, nil
}

// manifest fetches d's manifest (the registry client checks it against the
// digest) and checks that it is a bundle within the bounds.
func (s *Source) manifest(ctx context.Context, d name.Digest) (*manifest, []byte, error) {
	desc, err := remote.Get(d, s.remote(ctx)...)
	if err != nil {
		return nil, nil, &FetchError{What: "reading " + d.String(), Err: err}
	}
	bad := func(format string, a ...any) (*manifest, []byte, error) {
		return nil, nil, &MalformedError{Digest: d.DigestStr(), Reason: fmt.Sprintf(format, a...)}
	}
	if len(desc.Manifest) > maxManifestBytes {
		return bad("manifest of %d bytes, more than %d", len(desc.Manifest), maxManifestBytes)
	}
	var m manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return bad("manifest: %v", err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != ConfigMediaType {
		return bad("not a policy bundle: manifest %q with config %q (expected %s with config %s)", m.MediaType, m.Config.MediaType, types.OCIManifestSchema1, ConfigMediaType)
	}
	if m.ArtifactType != "" && m.ArtifactType != ArtifactType {
		return bad("artifactType %q, expected %s", m.ArtifactType, ArtifactType)
	}
	if len(m.Layers) > s.o.maxLayers {
		return nil, nil, &LimitError{What: "layers", Got: int64(len(m.Layers)), Limit: int64(s.o.maxLayers)}
	}
	var total int64
	for i, l := range m.Layers {
		if l.MediaType != LayerMediaType {
			return bad("layers[%d]: media type %q, expected %s", i, l.MediaType, LayerMediaType)
		}
		if l.Size < 0 {
			return bad("layers[%d]: size %d", i, l.Size)
		}
		if total += l.Size; total > s.o.maxBytes {
			return nil, nil, &LimitError{What: "bytes", Got: total, Limit: s.o.maxBytes}
		}
	}
	return &m, desc.Manifest, nil
}

// files reads the layers, each bounded by its declared size and checked
// against its digest.
func (s *Source) files(ctx context.Context, d name.Digest, m *manifest) ([]policy.File, error) {
	files := make([]policy.File, len(m.Layers))
	for i, l := range m.Layers {
		data, err := s.blob(ctx, d.Context(), l)
		if err != nil {
			var me *MalformedError
			if errors.As(err, &me) {
				me.Digest, me.Reason = d.DigestStr(), fmt.Sprintf("layers[%d]: %s", i, me.Reason)
			}
			return nil, err
		}
		files[i] = policy.File{Name: title(l, i), Data: data}
	}
	return files, nil
}

func (s *Source) blob(ctx context.Context, repo name.Repository, l v1.Descriptor) ([]byte, error) {
	layer, err := remote.Layer(repo.Digest(l.Digest.String()), s.remote(ctx)...)
	if err != nil {
		return nil, &FetchError{What: "reading layer " + l.Digest.String(), Err: err}
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, &FetchError{What: "reading layer " + l.Digest.String(), Err: err}
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, l.Size+1))
	// The registry client checks the digest at the end of the blob; its
	// error type is internal, so a mismatch is recognised by its text and
	// otherwise caught by the check below.
	if err != nil && !strings.HasPrefix(err.Error(), "error verifying") {
		return nil, &FetchError{What: "reading layer " + l.Digest.String(), Err: err}
	}
	h, _, _ := v1.SHA256(bytes.NewReader(data))
	if int64(len(data)) != l.Size || h != l.Digest {
		return nil, &MalformedError{Reason: fmt.Sprintf("blob %s does not match its descriptor (%d bytes, sha256 %s)", l.Digest, len(data), h.Hex)}
	}
	return data, nil
}

// title is a layer's file name for errors: its title when it is a clean
// relative path, else a name by position.
func title(l v1.Descriptor, i int) string {
	t := l.Annotations[TitleAnnotation]
	if t == "" || path.IsAbs(t) || path.Clean(t) != t || strings.HasPrefix(t, "..") || strings.ContainsAny(t, "\x00\n\r") || len(t) > 255 {
		return fmt.Sprintf("layers[%d].yaml", i)
	}
	return t
}
