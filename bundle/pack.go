package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imagegate/imagegate/policy"
)

// InvalidError says a policy set does not load; Err lists every problem with
// its file and field path (policy.Errors).
type InvalidError struct {
	Where string // the directory, or the bundle's reference and digest
	Err   error
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("invalid policy set in %s:\n%v", e.Where, e.Err)
}

func (e *InvalidError) Unwrap() error { return e.Err }

// Pack validates the policy set of dir (as serve --policies reads it) and
// makes a bundle of it: one layer per file, titled by its path under dir.
// The same files make the same digest.
func Pack(dir string, opts ...Option) (*Bundle, error) {
	o := apply(opts)
	if err := o.validate(); err != nil {
		return nil, err
	}
	read, err := policy.ReadFiles(dir)
	if err != nil {
		return nil, &InvalidError{Where: dir, Err: err}
	}
	snap, err := policy.LoadFiles(read)
	if err != nil {
		return nil, &InvalidError{Where: dir, Err: err}
	}
	base := dir
	if info, err := os.Stat(dir); err == nil && !info.IsDir() {
		base = filepath.Dir(dir)
	}
	files := make([]policy.File, len(read))
	for i, f := range read {
		rel, err := filepath.Rel(base, f.Name)
		if err != nil {
			return nil, err
		}
		files[i] = policy.File{Name: filepath.ToSlash(rel), Data: f.Data}
	}
	if err := o.check(files); err != nil {
		return nil, err
	}
	return assemble(files, snap)
}

// check applies the bounds to the files of a bundle.
func (o *options) check(files []policy.File) error {
	if len(files) > o.maxLayers {
		return &LimitError{What: "layers", Got: int64(len(files)), Limit: int64(o.maxLayers)}
	}
	var total int64
	for _, f := range files {
		total += int64(len(f.Data))
	}
	if total > o.maxBytes {
		return &LimitError{What: "bytes", Got: total, Limit: o.maxBytes}
	}
	return nil
}

func assemble(files []policy.File, snap *policy.Snapshot) (*Bundle, error) {
	cfg := newConfig(snap, len(files))
	m := manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: ArtifactType,
		Config: descriptor(cfg, ConfigMediaType, nil), Layers: make([]v1.Descriptor, len(files))}
	for i, f := range files {
		m.Layers[i] = descriptor(f.Data, LayerMediaType, map[string]string{TitleAnnotation: f.Name})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return &Bundle{Manifest: raw, Digest: h, Config: cfg, Files: files, Snapshot: snap}, nil
}

func descriptor(b []byte, mt types.MediaType, ann map[string]string) v1.Descriptor {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: h, Annotations: ann}
}

// Push writes the bundle's blobs and then its manifest under ref (a tag or
// the bundle's own digest) and returns the reference by digest.
func (b *Bundle) Push(ctx context.Context, ref string, opts ...Option) (name.Digest, error) {
	o := apply(opts)
	r, err := ParseRef(ref, o.insecure...)
	if err != nil {
		return name.Digest{}, err
	}
	if d, ok := r.(name.Digest); ok && d.DigestStr() != b.Digest.String() {
		return name.Digest{}, fmt.Errorf("%s: the bundle's digest is %s", ref, b.Digest)
	}
	ro := append([]remote.Option{remote.WithContext(ctx)}, o.remote...)
	blobs := []v1.Layer{static.NewLayer(b.Config, ConfigMediaType)}
	for _, f := range b.Files {
		blobs = append(blobs, static.NewLayer(f.Data, LayerMediaType))
	}
	for _, l := range blobs {
		if err := remote.WriteLayer(r.Context(), l, ro...); err != nil {
			return name.Digest{}, fmt.Errorf("pushing to %s: %w", r.Context(), err)
		}
	}
	if err := remote.Put(r, rawManifest(b.Manifest), ro...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing %s: %w", r, err)
	}
	return r.Context().Digest(b.Digest.String()), nil
}

type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
