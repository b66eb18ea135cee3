package imagebuild

import (
	"archive/tar"
	"bytes"
	"io"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user the image runs as (distroless' nonroot).
const (
	nonrootUID = 65532
	nonrootDir = "home/nonroot"
)

// entry is one file or directory of a layer.
type entry struct {
	name     string // relative, no leading slash
	dir      bool
	mode     int64
	uid, gid int
	data     []byte
}

// layer builds a reproducible layer: entries sorted by name, every parent
// directory listed, one timestamp, numeric owners only (no user or group
// names of the build machine), PAX format.
func layer(entries []entry, t time.Time) (v1.Layer, error) {
	all := map[string]entry{}
	for _, e := range entries {
		all[e.name] = e
		for d := parent(e.name); d != ""; d = parent(d) {
			if _, ok := all[d]; !ok {
				all[d] = entry{name: d, dir: true, mode: 0o755}
			}
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := all[n]
		h := &tar.Header{Name: n, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: t, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, n+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

func parent(name string) string {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ""
	}
	return name[:i]
}

// baseEntries are what the binary needs around it: CA certificates, and a
// passwd and group naming root and nonroot (Go's os/user, and tools that
// show the user), and nonroot's home.
func baseEntries(caBundle []byte) []entry {
	return []entry{
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caBundle},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: nonrootDir, dir: true, mode: 0o700, uid: nonrootUID, gid: nonrootUID},
		{name: "tmp", dir: true, mode: 0o1777},
	}
}
