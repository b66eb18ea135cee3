package imagebuild

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Config{Dir: "..", Package: "./imagebuild/testdata/hello", CABundle: ca,
		Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Labels: map[string]string{"org.opencontainers.image.revision": "test"}}
}

// Two builds of the same source give the same index digest, for both
// platforms: fixed timestamps and owners, sorted entries, no build id.
func TestBuildIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles twice for two platforms")
	}
	ctx := context.Background()
	a, err := Build(ctx, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(ctx, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("two builds: %s and %s", da, db)
	}
	im, err := a.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, m := range im.Manifests {
		plats = append(plats, m.Platform.OS+"/"+m.Platform.Architecture)
	}
	if !slices.Equal(plats, []string{"linux/amd64", "linux/arm64"}) || im.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("index %s with %v, want an OCI index of linux/amd64 and linux/arm64", im.MediaType, plats)
	}
	t.Logf("index %s", da)

	// The layout on disk reads back as the same index.
	dir := filepath.Join(t.TempDir(), "layout")
	if err := WriteLayout(dir, a, "imagegate:test"); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, _ := top.IndexManifest()
	if len(tm.Manifests) != 1 || tm.Manifests[0].Digest != da || tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "imagegate:test" {
		t.Errorf("layout index.json %+v, want the image index %s named imagegate:test", tm.Manifests, da)
	}
}

// Each platform image: nonroot, no shell, the binary, CA certificates and
// an SPDX SBOM naming the linked modules; every entry sorted, owned by
// numbers and stamped with the one time.
func TestImageContents(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles")
	}
	c := testConfig(t)
	c.Platforms = []Platform{{"linux", "arm64"}}
	idx, err := Build(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || cf.Architecture != "arm64" || !slices.Equal(cf.Config.Entrypoint, []string{BinaryPath}) ||
		!cf.Created.Time.Equal(c.Time) || cf.Config.Labels["dev.imagegate.sbom"] != "/"+SBOMPath {
		t.Errorf("config %+v", cf)
	}
	files := map[string]*tar.Header{}
	var sbom []byte
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		var names []string
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, h.Name)
			files[h.Name] = h
			if !h.ModTime.Equal(c.Time) || h.Uname != "" || h.Gname != "" {
				t.Errorf("%s: time %s, owner names %q %q", h.Name, h.ModTime, h.Uname, h.Gname)
			}
			if h.Name == SBOMPath {
				sbom, _ = io.ReadAll(tr)
			}
		}
		rc.Close()
		if !slices.IsSorted(names) {
			t.Errorf("layer entries not sorted: %v", names)
		}
	}
	for _, want := range []string{"etc/ssl/certs/ca-certificates.crt", "etc/passwd", "usr/local/bin/imagegate", "home/nonroot/", SBOMPath} {
		if files[want] == nil {
			t.Errorf("no %s in the image", want)
		}
	}
	for name := range files {
		if strings.HasSuffix(name, "/sh") || strings.HasPrefix(name, "bin/") {
			t.Errorf("the image has %s: no shell wanted", name)
		}
	}
	if h := files["usr/local/bin/imagegate"]; h == nil || h.Mode&0o111 == 0 || h.Uid != 0 {
		t.Errorf("binary header %+v", h)
	}
	if h := files["home/nonroot/"]; h == nil || h.Uid != 65532 {
		t.Errorf("nonroot's home %+v", h)
	}
	var doc struct {
		SPDXVersion string
		Packages    []struct{ Name, VersionInfo string }
	}
	if err := json.Unmarshal(sbom, &doc); err != nil {
		t.Fatalf("SBOM: %v\n%s", err, sbom)
	}
	var names []string
	for _, p := range doc.Packages {
		names = append(names, p.Name)
	}
	if doc.SPDXVersion != "SPDX-2.3" || !slices.Contains(names, "go.yaml.in/yaml/v3") || !slices.Contains(names, "stdlib") ||
		!slices.Contains(names, "github.com/imagegate/imagegate") {
		t.Errorf("SBOM %s lists %v", doc.SPDXVersion, names)
	}
	var _ v1.Image = img
}
