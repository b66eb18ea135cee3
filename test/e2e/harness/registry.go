package harness

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const registryConfig = `version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: imagegate-e2e
  headers:
    X-Content-Type-Options: [nosniff]
`

// StartRegistry starts the docker-registry of the distribution project
// (Debian package docker-registry, 2.8) on a free port of 127.0.0.1 with
// filesystem storage in a temporary directory, waits until GET /v2/
// answers, and returns its host:port. It speaks plain HTTP, which
// go-containerregistry and cosign assume for 127.0.0.1.
func StartRegistry(t TB) string {
	t.Helper()
	bin := MustTool(t, EnvRegistry)
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		t.Fatalf("registry storage: %v", err)
	}
	host := hostPort(FreePort(t))
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(registryConfig, storage, host)), 0o644); err != nil {
		t.Fatalf("registry config: %v", err)
	}
	p := startProcess(t, "docker-registry", dir, bin, []string{"serve", config}, nil)
	c := &http.Client{Timeout: 2 * time.Second}
	p.waitFor(t, 30*time.Second, func() error {
		resp, err := c.Get("http://" + host + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		return nil
	})
	return host
}

// PushRandomImage pushes a small random image (two layers) to
// registryHost/repo:tag and returns its manifest digest ("sha256:...").
func PushRandomImage(t TB, registryHost, repo, tag string) string {
	t.Helper()
	ref, err := name.NewTag(registryHost+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatalf("image reference: %v", err)
	}
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatalf("random image: %v", err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("digest: %v", err)
	}
	return d.String()
}
