package facts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/imagegate/imagegate/workload"
	"sigs.k8s.io/yaml"
)

// File is a facts file (imagegate check --facts): images keyed by the image
// string as written in the manifest.
type File struct {
	Images map[string]*Image `json:"images"`

	byCanonical map[string]*Image
	byDigest    map[string]*Image
}

// LoadFile reads a YAML or JSON facts file.
func LoadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("facts: %w", err)
	}
	f, err := ParseFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ParseFile decodes a facts document, rejecting unknown fields.
func ParseFile(data []byte) (*File, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("malformed YAML/JSON: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	f := &File{}
	if err := dec.Decode(f); err != nil {
		return nil, fmt.Errorf("facts: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if err := f.index(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) index() error {
	f.byCanonical = map[string]*Image{}
	f.byDigest = map[string]*Image{}
	for key, img := range f.Images {
		if img == nil {
			img = &Image{}
			f.Images[key] = img
		}
		if err := img.normalize("images[" + key + "]"); err != nil {
			return err
		}
		ref := workload.ParseImage(key)
		if ref.Err == nil {
			f.byCanonical[ref.Canonical] = img
			if ref.Digest != "" {
				f.byDigest[ref.Digest] = img
			}
		}
		if img.Digest != "" {
			f.byDigest[img.Digest] = img
		}
	}
	return nil
}

func (img *Image) normalize(path string) error {
	if s := img.Scan; s != nil {
		for i := range s.Findings {
			fd := &s.Findings[i]
			p := fmt.Sprintf("%s.scan.findings[%d]", path, i)
			fd.Category = NormalizeCategory(fd.Category)
			if !isCategory(fd.Category) {
				return fmt.Errorf("%s.category: %q is not one of %s", p, fd.Category, strings.Join(Categories, ", "))
			}
			if fd.ID == "" && fd.Level == "" {
				return fmt.Errorf("%s: needs an id or a level", p)
			}
			fd.Level = NormalizeLevel(fd.Level)
			if fd.Level != "high" && fd.Level != "medium" && fd.Level != "low" {
				return fmt.Errorf("%s.level: %q is not one of high, medium, low (or a scanner severity)", p, fd.Level)
			}
			fd.Class = strings.ToLower(fd.Class)
		}
	}
	return nil
}

func isCategory(c string) bool {
	for _, k := range Categories {
		if k == c {
			return true
		}
	}
	return false
}

// Lookup finds the facts for an image: by the string as written, else by the
// same canonical reference, else by digest. Unknown images get empty facts:
// unsigned and unscanned.
func (f *File) Lookup(img workload.Image) *Image {
	if f != nil {
		if got, ok := f.Images[img.Ref]; ok {
			return got
		}
		if got, ok := f.byCanonical[img.Canonical]; ok && img.Canonical != "" {
			return got
		}
		if got, ok := f.byDigest[img.Digest]; ok && img.Digest != "" {
			return got
		}
	}
	return &Image{}
}

// Facts answers from the file.
func (f *File) Facts(_ context.Context, req Request) ([]*Image, error) {
	out := make([]*Image, len(req.Images))
	for i, img := range req.Images {
		out[i] = f.Lookup(img)
	}
	return out, nil
}

// None is a Source that knows nothing: every image is unsigned and unscanned.
type None struct{}

// Facts returns empty facts for every image.
func (None) Facts(_ context.Context, req Request) ([]*Image, error) {
	out := make([]*Image, len(req.Images))
	for i := range out {
		out[i] = &Image{}
	}
	return out, nil
}

var (
	_ Source = (*File)(nil)
	_ Source = None{}
)
