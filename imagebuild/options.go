package imagebuild

import (
	"fmt"
	"strings"
	"time"
)

// Platform is one os/arch the image is built for.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// ParsePlatforms reads a comma-separated list such as linux/amd64,linux/arm64.
func ParsePlatforms(s string) ([]Platform, error) {
	var out []Platform
	for _, f := range strings.Split(s, ",") {
		os, arch, ok := strings.Cut(strings.TrimSpace(f), "/")
		if !ok || os == "" || arch == "" {
			return nil, fmt.Errorf("platform %q: expected os/arch, e.g. linux/arm64", f)
		}
		out = append(out, Platform{os, arch})
	}
	return out, nil
}

// Config is what Build needs.
type Config struct {
	// Dir is the module root to build in; Package the main package.
	Dir, Package string
	// Platforms to build; the index lists them in this order.
	Platforms []Platform
	// CABundle is the PEM file installed as /etc/ssl/certs/ca-certificates.crt
	// (the Debian ca-certificates bundle, or Go's roots file).
	CABundle string
	// Time is every timestamp in the image (SOURCE_DATE_EPOCH, the commit's time).
	Time time.Time
	// Labels go into each image's config and, as annotations, the index.
	Labels map[string]string
	// Go is the go command; GoFlags more go build flags.
	Go      string
	GoFlags []string
}

func (c *Config) defaults() {
	if c.Package == "" {
		c.Package = "./cmd/imagegate"
	}
	if c.Dir == "" {
		c.Dir = "."
	}
	if c.Go == "" {
		c.Go = "go"
	}
	if c.CABundle == "" {
		c.CABundle = "/etc/ssl/certs/ca-certificates.crt"
	}
	if len(c.Platforms) == 0 {
		c.Platforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}}
	}
	c.Time = c.Time.UTC()
}
