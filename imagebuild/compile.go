package imagebuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// compile cross-compiles the package for p into dir. -trimpath and an empty
// build id keep paths and the build id of this machine out of the binary;
// the VCS stamp (revision, modified) stays, so a binary says what it was
// built from.
func compile(ctx context.Context, c *Config, p Platform, dir string) (string, error) {
	out := filepath.Join(dir, "imagegate-"+p.OS+"-"+p.Arch)
	args := append([]string{"build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out}, c.GoFlags...)
	cmd := exec.CommandContext(ctx, c.Go, append(args, c.Package)...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build for %s: %v\n%s", p, err, b)
	}
	return out, nil
}
