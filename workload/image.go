package workload

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Container kinds an image can come from.
const (
	Container          = "container"
	InitContainer      = "initContainer"
	EphemeralContainer = "ephemeralContainer"
)

// Image is one image reference as written in a manifest, with the forms that
// imageName patterns are matched against.
type Image struct {
	Ref       string // as written in the manifest
	Container string // container name
	Source    string // Container, InitContainer or EphemeralContainer

	// Filled by ParseImage; Err is set when the reference does not parse.
	Canonical  string   // full reference, e.g. index.docker.io/library/nginx:latest
	Repository string   // e.g. index.docker.io/library/nginx
	Tag        string   // the tag ("latest" when neither tag nor digest is written)
	Digest     string   // sha256:..., when written
	Names      []string // last path segment, repository path, full name (and Docker Hub aliases)
	Err        error
}

// ParseImage parses ref as a Docker reference: nginx is
// index.docker.io/library/nginx:latest.
func ParseImage(ref string) Image {
	img := Image{Ref: ref}
	r, err := name.ParseReference(ref)
	if err != nil {
		img.Err = err
		return img
	}
	repo := r.Context()
	img.Canonical = r.Name()
	img.Repository = repo.Name()
	if d, ok := r.(name.Digest); ok {
		img.Digest = d.DigestStr()
		img.Tag = writtenTag(ref)
	} else {
		img.Tag = r.Identifier()
	}
	path := repo.RepositoryStr()
	last := path[strings.LastIndexByte(path, '/')+1:]
	// The forms docs/semantics.md names: last path segment, repository path, full
	// name. Never the tag or digest: a glob like *prod* must not match a tag.
	names := []string{last, path, repo.Name()}
	if repo.RegistryStr() == name.DefaultRegistry {
		// Docker Hub is spelled docker.io by people and index.docker.io by the
		// library; official images also go without library/.
		names = append(names, "docker.io/"+path)
		if short, ok := strings.CutPrefix(path, "library/"); ok {
			names = append(names, short, "docker.io/"+short)
		}
	}
	img.Names = dedupe(names)
	return img
}

// writtenTag returns the tag of a reference that also has a digest
// (repo:tag@sha256:...), or "".
func writtenTag(ref string) string {
	at := strings.IndexByte(ref, '@')
	if at < 0 {
		return ""
	}
	base := ref[:at]
	colon := strings.LastIndexByte(base, ':')
	if colon < 0 || colon < strings.LastIndexByte(base, '/') {
		return ""
	}
	return base[colon+1:]
}

func dedupe(ss []string) []string {
	out := ss[:0]
	seen := make(map[string]bool, len(ss))
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
