package main

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// What the tests that run the real imagegate serve share.

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
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// selfSignedCert writes a serving certificate for 127.0.0.1 and its key
// into dir; without openssl the test is skipped.
func selfSignedCert(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	cert, key = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1").CombinedOutput(); err != nil {
		t.Skipf("openssl: %v %s", err, out)
	}
	return cert, key
}

// serveClient trusts any certificate: serve runs with a self-signed one.
func serveClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

// waitReady waits until serve on listen answers /readyz with 200.
func waitReady(t *testing.T, client *http.Client, listen string) {
	t.Helper()
	waitFor(t, "ready", func() bool {
		resp, err := client.Get("https://" + listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// stopServe sends SIGTERM and fails the test unless serve exits cleanly
// within 10s; after it returns, cmd's output is complete.
func stopServe(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of SIGTERM")
	}
}

// apiCaller calls the management API on apiListen: one form-encoded
// action with its parameters as key, value pairs, no Authorization header
// for an empty token. Every answer, refusals too, must carry a RequestId.
func apiCaller(t *testing.T, client *http.Client, apiListen string) func(token, action string, kv ...string) (int, map[string]any) {
	return func(token, action string, kv ...string) (int, map[string]any) {
		t.Helper()
		form := url.Values{"Action": {action}}
		for i := 0; i+1 < len(kv); i += 2 {
			form.Set(kv[i], kv[i+1])
		}
		req, _ := http.NewRequest("POST", "https://"+apiListen+"/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		if m["RequestId"] == nil {
			t.Errorf("%s: no RequestId: %v", action, m)
		}
		return resp.StatusCode, m
	}
}

// podAllowed sends serve on listen the admission of a pod running image
// and returns whether it was allowed.
func podAllowed(t *testing.T, client *http.Client, listen, image string) bool {
	t.Helper()
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"namespace":"default","operation":"CREATE",` +
		`"object":{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"` + image + `"}]}}}}`
	resp, err := client.Post("https://"+listen+"/validate?timeout=5s", "application/json", strings.NewReader(body))
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

// unreachableKubeconfig writes into dir a valid kubeconfig for an API
// server that is not there (127.0.0.1:1) and returns its path: enough for
// serve to build its clients, which contact nothing until they start.
func unreachableKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
