package imagebuild

import (
	"context"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BinaryPath is where the image holds imagegate.
const BinaryPath = "/usr/local/bin/imagegate"

// Build compiles the binary for every platform and assembles the image
// index: one image per platform, each three layers (CA certificates and
// users, the binary, the SBOM), in the order of c.Platforms.
func Build(ctx context.Context, c Config) (v1.ImageIndex, error) {
	c.defaults()
	ca, err := os.ReadFile(c.CABundle)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: CA certificates: %w", err)
	}
	tmp, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	base, err := layer(baseEntries(ca), c.Time)
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, p := range c.Platforms {
		bin, err := compile(ctx, &c, p, tmp)
		if err != nil {
			return nil, err
		}
		img, err := platformImage(&c, p, base, bin)
		if err != nil {
			return nil, fmt.Errorf("imagebuild: %s: %w", p, err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch},
		}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	if len(c.Labels) > 0 {
		idx = mutate.Annotations(idx, c.Labels).(v1.ImageIndex)
	}
	return idx, nil
}

func platformImage(c *Config, p Platform, base v1.Layer, binPath string) (v1.Image, error) {
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, err
	}
	binLayer, err := layer([]entry{{name: BinaryPath[1:], mode: 0o755, data: bin}}, c.Time)
	if err != nil {
		return nil, err
	}
	sbom, err := SBOM(bin, BinaryPath, p, c.Time)
	if err != nil {
		return nil, err
	}
	sbomLayer, err := layer([]entry{{name: SBOMPath, mode: 0o644, data: sbom}}, c.Time)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: c.Time}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "imagebuild: CA certificates, passwd, group"}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: created, CreatedBy: "imagebuild: go build -trimpath " + c.Package + " (CGO_ENABLED=0)"}},
		mutate.Addendum{Layer: sbomLayer, History: v1.History{Created: created, CreatedBy: "imagebuild: SPDX SBOM of the Go modules"}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = p.OS, p.Arch, created
	labels := map[string]string{"dev.imagegate.sbom": "/" + SBOMPath}
	for k, v := range c.Labels {
		labels[k] = v
	}
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", nonrootUID, nonrootUID),
		WorkingDir:   "/" + nonrootDir,
		Entrypoint:   []string{BinaryPath},
		Cmd:          []string{"serve", "--help"},
		Env:          []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "HOME=/" + nonrootDir},
		ExposedPorts: map[string]struct{}{"8443/tcp": {}, "9090/tcp": {}},
		Labels:       labels,
	}
	return mutate.ConfigFile(img, cf)
}
