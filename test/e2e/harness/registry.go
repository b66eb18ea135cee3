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
	"golang.org/x/crypto/bcrypt"
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

// RegistryOption configures StartRegistry.
type RegistryOption func(*registryOptions)

type registryOptions struct {
	user, password string
}

// WithHTPasswd makes the registry require HTTP basic auth (htpasswd, bcrypt)
// as user with password for every request.
func WithHTPasswd(user, password string) RegistryOption {
	return func(o *registryOptions) { o.user, o.password = user, password }
}

// StartRegistry starts the docker-registry of the distribution project
// (Debian package docker-registry, 2.8) on a free port of 127.0.0.1 with
// filesystem storage in a temporary directory, waits until GET /v2/
// answers, and returns its host:port. It speaks plain HTTP, which
// go-containerregistry and cosign assume for 127.0.0.1.
func StartRegistry(t TB, opts ...RegistryOption) string {
	t.Helper()
	var o registryOptions
	for _, opt := range opts {
		opt(&o)
	}
	bin := MustTool(t, EnvRegistry)
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		t.Fatalf("registry storage: %v", err)
	}
	host := hostPort(FreePort(t))
	config := filepath.Join(dir, "config.yml")
	cfg := fmt.Sprintf(registryConfig, storage, host)
	ready := http.StatusOK
	if o.user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("htpasswd: %v", err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(o.user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatalf("htpasswd: %v", err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: imagegate-e2e\n    path: %q\n", htpasswd)
		ready = http.StatusUnauthorized // up, and asking for credentials
	}
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
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
		if resp.StatusCode != ready {
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
