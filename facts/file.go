package facts

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/imagegate/imagegate/internal/strictyaml"
	"github.com/imagegate/imagegate/workload"
	"go.yaml.in/yaml/v3"
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
	return parse(path, data)
}

// ParseFile decodes a facts document, rejecting unknown fields.
func ParseFile(data []byte) (*File, error) { return parse("", data) }

// FieldError is a problem with one field of a facts file: file, line,
// field path and what is wrong.
type FieldError = strictyaml.FieldError

// parse decodes strictly: a misspelt field (attestor:, scannedat:) would
// otherwise leave an image unsigned or unscanned without a word. Every
// error is a *FieldError naming file, line and field.
func parse(file string, data []byte) (*File, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &FieldError{File: file, Msg: "malformed YAML/JSON: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	f := &File{}
	if len(doc.Content) == 0 || strictyaml.IsNull(doc.Content[0]) {
		return f, f.index(nil)
	}
	res := strictyaml.Check(doc.Content[0], reflect.TypeOf(File{}), "", strictyaml.Options{Scalars: true})
	if len(res.Errors) > 0 {
		e := res.Errors[0]
		e.File = file
		return nil, e
	}
	if err := strictyaml.Decode(doc.Content[0], f); err != nil {
		return nil, &FieldError{File: file, Line: doc.Content[0].Line, Msg: err.Error()}
	}
	if err := f.index(res.Lines); err != nil {
		if fe, ok := err.(*FieldError); ok {
			fe.File = file
		}
		return nil, err
	}
	return f, nil
}

func (f *File) index(lines map[string]int) error {
	f.byCanonical = map[string]*Image{}
	f.byDigest = map[string]*Image{}
	if f.Images == nil {
		f.Images = map[string]*Image{}
	}
	for key, img := range f.Images {
		if img == nil {
			img = &Image{}
			f.Images[key] = img
		}
		if err := img.normalize("images["+key+"]", lines); err != nil {
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

func (img *Image) normalize(path string, lines map[string]int) error {
	fail := func(p, format string, args ...any) error {
		return &FieldError{Line: lines[p], Path: p, Msg: fmt.Sprintf(format, args...)}
	}
	if s := img.Scan; s != nil {
		for i := range s.Findings {
			fd := &s.Findings[i]
			p := fmt.Sprintf("%s.scan.findings[%d]", path, i)
			fd.Category = NormalizeCategory(fd.Category)
			if !isCategory(fd.Category) {
				return fail(p+".category", "%q is not one of %s", fd.Category, strings.Join(Categories, ", "))
			}
			if fd.ID == "" && fd.Level == "" {
				return fail(p, "needs an id or a level")
			}
			fd.Level = NormalizeLevel(fd.Level)
			if fd.Level != "high" && fd.Level != "medium" && fd.Level != "low" {
				return fail(p+".level", "%q is not one of high, medium, low (or a scanner severity)", fd.Level)
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
