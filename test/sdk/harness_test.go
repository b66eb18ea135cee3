package sdk

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is imagegate built once for every test of this module.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imagegate-sdk-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "imagegate")
	// Built from this repository's module, with its own go.mod: the SDKs
	// stay out of the product's dependencies.
	build := exec.Command("go", "build", "-o", binary, "./cmd/imagegate")
	build.Dir = filepath.Join("..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running imagegate serve with the management API.
type server struct {
	listen, api string // webhook and API addresses
	state       string
	keyFile     string
	client      *http.Client
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startServe runs imagegate serve with a tokens file (admin-secret is an
// administrator) and access keys on; it is stopped when the test ends.
func startServe(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1").CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v %s", err, out)
	}
	tokens := filepath.Join(dir, "tokens.csv")
	os.WriteFile(tokens, []byte("admin-secret,root,imagegate:admins\n"), 0o600)
	s := &server{listen: freePort(t), api: freePort(t), state: filepath.Join(dir, "iam.json"), keyFile: filepath.Join(dir, "ak.key")}
	k := make([]byte, 32)
	rand.Read(k)
	os.WriteFile(s.keyFile, k, 0o600)
	cmd := exec.Command(binary, "serve", "--policies", policies, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--listen", s.listen, "--metrics-listen", "", "--policy-poll-interval", "100ms",
		"--api-listen", s.api, "--api-tokens", tokens, "--api-state", s.state, "--api-access-key-encryption-key-file", s.keyFile)
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs.String())
		}
	})
	s.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, "serve to be ready", func() bool {
		resp, err := s.client.Get("https://" + s.listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return s
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// accessKey makes a key with `imagegate access-key create` while serve
// runs, and waits until serve accepts it.
func (s *server) accessKey(t *testing.T, principal, groups string) (id, secret string) {
	t.Helper()
	out, err := exec.Command(binary, "access-key", "create", "--api-state", s.state, "--api-access-key-encryption-key-file", s.keyFile,
		"--principal", principal, "--groups", groups).Output()
	if err != nil {
		t.Fatalf("access-key create: %v", err)
	}
	var created struct {
		AccessKey struct{ AccessKeyId, AccessKeySecret, Status, CreateDate string }
		RequestId string
	}
	if err := json.Unmarshal(out, &created); err != nil || created.AccessKey.Status != "Active" || created.AccessKey.CreateDate == "" || created.RequestId == "" {
		t.Fatalf("access-key create printed %s (%v)", out, err)
	}
	return created.AccessKey.AccessKeyId, created.AccessKey.AccessKeySecret
}

// bearer calls the API with the administrator's token (set-up only).
func (s *server) bearer(t *testing.T, method, path, contentType, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, "https://"+s.api+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer admin-secret")
	req.Header.Set("Content-Type", contentType)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	var m map[string]any
	json.Unmarshal(raw, &m)
	return m
}

// podAllowed sends serve the admission of a pod running image.
func (s *server) podAllowed(t *testing.T, image string) bool {
	t.Helper()
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"namespace":"default","operation":"CREATE",` +
		`"object":{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"` + image + `"}]}}}}`
	resp, err := s.client.Post("https://"+s.listen+"/validate?timeout=5s", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Response struct{ Allowed bool } }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Response.Allowed
}

// recorder is a RoundTripper that keeps a copy of the last request sent,
// so a test can send it again byte for byte (a replay).
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	last *http.Request
	body []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	r.last, r.body = req.Clone(req.Context()), body
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// replay sends the last request again and returns the status and body.
func (r *recorder) replay(t *testing.T) (int, map[string]any) {
	t.Helper()
	r.mu.Lock()
	req := r.last.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(r.body))
	r.mu.Unlock()
	req.RequestURI = ""
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func insecureTransport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
}
