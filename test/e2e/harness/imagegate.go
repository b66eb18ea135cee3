package harness

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// RootModule is the module path of imagegate itself.
const RootModule = "github.com/imagegate/imagegate"

// EnvImagegateBin names a prebuilt imagegate binary to use instead of
// building one from the repository.
const EnvImagegateBin = "IMAGEGATE_BIN"

// RepoRoot finds the root of the imagegate repository: the nearest
// directory above the working directory (test/e2e when testing) whose
// go.mod declares RootModule.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			s := bufio.NewScanner(f)
			for s.Scan() {
				if fields := strings.Fields(s.Text()); len(fields) == 2 && fields[0] == "module" && fields[1] == RootModule {
					f.Close()
					return dir, nil
				}
			}
			f.Close()
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory", RootModule)
		}
		dir = parent
	}
}

// ImagegateBinary returns the imagegate binary under test: $IMAGEGATE_BIN,
// or one built from the repository once per test run, with the Dockerfile's
// flags (static, CGO_ENABLED=0, -trimpath). It needs Main as TestMain (the binary is removed there).
func ImagegateBinary(t TB) string {
	t.Helper()
	if p := os.Getenv(EnvImagegateBin); p != "" {
		return p
	}
	shared.imagegateOnce.Do(func() {
		shared.imagegateErr = shared.owner.Run(func() {
			root, err := RepoRoot()
			if err != nil {
				shared.owner.Fatalf("%v", err)
			}
			bin := filepath.Join(shared.owner.TempDir(), "imagegate")
			start := time.Now()
			if err := goBuild(root, "./cmd/imagegate", bin); err != nil {
				shared.owner.Fatalf("%v", err)
			}
			shared.imagegate = bin
			t.Logf("built imagegate from %s in %s", root, time.Since(start).Round(100*time.Millisecond))
		})
	})
	if shared.imagegateErr != nil {
		t.Fatalf("imagegate binary: %v", shared.imagegateErr)
	}
	return shared.imagegate
}

// goBuild builds pkg of the repository at root into bin exactly as the
// Dockerfile builds the shipped binary.
func goBuild(root, pkg, bin string) error {
	cmd := exec.Command(goTool(), "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %v\n%s", pkg, root, err, out)
	}
	return nil
}

// goTool is the go command: the one on PATH, else the one of this toolchain.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Imagegate is a running `imagegate serve`.
type Imagegate struct {
	*Process
	// URL is https://127.0.0.1:<port>; the webhook is URL + "/validate".
	URL string
	// MetricsURL is http://127.0.0.1:<port>; /metrics is there.
	MetricsURL string
	// CAPEM is the CA certificate that signed the serving certificate (for a
	// webhook's caBundle).
	CAPEM []byte
}

// StartImagegate runs `imagegate serve` on free ports of 127.0.0.1 with a
// serving certificate for 127.0.0.1 and localhost, plus args (--policies,
// --cluster-id, --facts ...), waits until GET /readyz answers 200 and stops
// it with SIGTERM in a cleanup. It is RunImagegate without options.
func StartImagegate(t TB, args ...string) *Imagegate {
	t.Helper()
	return RunImagegate(t, args)
}

// ImagegateOption changes how RunImagegate starts and awaits imagegate.
type ImagegateOption func(*imagegateOptions)

type imagegateOptions struct {
	listen      string // host:port of --listen
	servingCert bool   // add --tls-cert-file and --tls-private-key-file
	readyPath   string // GET answers 200 when ready, unless ready is set
	ready       func(*Imagegate) error
	env         []string // NAME=value for the process
}

// ServeAt makes imagegate listen on addr (host:port) instead of a free port
// of 127.0.0.1, for a test that must name the address before the start
// (e.g. in a webhook configuration imagegate patches at start).
func ServeAt(addr string) ImagegateOption {
	return func(o *imagegateOptions) { o.listen = addr }
}

// OwnServingCert leaves the serving certificate flags to args (a
// certificate the test made, or the certificate bootstrap): the harness
// makes none, and Imagegate.CAPEM is nil. As the harness cannot verify
// such a certificate, give ReadyWhen too.
func OwnServingCert() ImagegateOption {
	return func(o *imagegateOptions) { o.servingCert = false }
}

// Env sets environment variables (NAME=value) of the imagegate process,
// e.g. the GOGC and GOMEMLIMIT the shipped Deployment sets.
func Env(kv ...string) ImagegateOption {
	return func(o *imagegateOptions) { o.env = append(o.env, kv...) }
}

// ReadyAt makes RunImagegate wait until GET path answers 200 instead of
// /readyz: /healthz for an imagegate that is meant not to be ready yet.
func ReadyAt(path string) ImagegateOption {
	return func(o *imagegateOptions) { o.readyPath, o.ready = path, nil }
}

// ReadyWhen makes RunImagegate wait until ready returns nil instead of
// until GET /readyz answers 200.
func ReadyWhen(ready func(*Imagegate) error) ImagegateOption {
	return func(o *imagegateOptions) { o.ready = ready }
}

// RunImagegate runs `imagegate serve` with args, by default on free ports
// of 127.0.0.1 (--listen, --metrics-listen) with a serving certificate the
// harness makes for 127.0.0.1 and localhost; it waits up to 30 s until
// GET /readyz answers 200 (or what ReadyAt or ReadyWhen say), failing the
// test at once if imagegate exits first. Its output goes to a log file whose
// last lines the test logs when it fails; a cleanup stops it with SIGTERM.
func RunImagegate(t TB, args []string, opts ...ImagegateOption) *Imagegate {
	t.Helper()
	o := imagegateOptions{servingCert: true, readyPath: "/readyz"}
	for _, opt := range opts {
		opt(&o)
	}
	if !o.servingCert && o.ready == nil {
		t.Fatalf("RunImagegate: OwnServingCert needs ReadyWhen (the harness cannot verify a certificate it did not make)")
	}
	bin := ImagegateBinary(t)
	dir := t.TempDir()
	if o.listen == "" {
		o.listen = hostPort(FreePort(t))
	}
	metrics := hostPort(FreePort(t))
	all := []string{"serve", "--listen", o.listen, "--metrics-listen", metrics}
	var caPEM []byte
	if o.servingCert {
		ca := NewCA(t, "imagegate")
		serving := ca.ServingCert(t, "imagegate", nil, "imagegate.imagegate.svc")
		all = append(all, "--tls-cert-file", serving.CertFile, "--tls-private-key-file", serving.KeyFile)
		caPEM = ca.CertPEM
	}
	all = append(all, args...)
	// imagegate only ever talks to registries on 127.0.0.1 here.
	p := startProcess(t, "imagegate", dir, bin, all, append(append([]string(nil), offlineEnv...), o.env...))
	ig := &Imagegate{Process: p, URL: "https://" + o.listen, MetricsURL: "http://" + metrics, CAPEM: caPEM}
	if o.ready == nil {
		c := ig.HTTPClient() // one client: a new one per poll would leave its connections open
		o.ready = func(ig *Imagegate) error { return get200(c, ig.URL+o.readyPath) }
	}
	p.waitFor(t, 30*time.Second, func() error { return o.ready(ig) })
	return ig
}

// get200 returns nil when GET url answers 200 within 2 s.
func get200(c *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("GET " + url + ": " + resp.Status)
	}
	return nil
}

// HTTPClient returns a client that trusts the serving certificate.
func (ig *Imagegate) HTTPClient() *http.Client { return clientTrusting(ig.CAPEM) }

// clientTrusting returns a client that trusts the CA certificate caPEM.
func clientTrusting(caPEM []byte) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
}
