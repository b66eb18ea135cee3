package webhook_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
	"github.com/imagegate/imagegate/workload"
	"github.com/prometheus/client_golang/prometheus"
)

// writeCert writes a self-signed serving certificate for 127.0.0.1 with the
// given common name.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.Rename(keyFile+".tmp", keyFile)
	os.Rename(certFile+".tmp", certFile)
	return certFile, keyFile
}

type testServer struct {
	url    string
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

func startServer(t *testing.T, h http.Handler, ready func() bool, certFile, keyFile string, opts ...func(*webhook.Server)) *testServer {
	t.Helper()
	certs, err := webhook.NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	mln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &webhook.Server{Handler: h, Ready: ready, Certs: certs, Gatherer: prometheus.NewRegistry(),
		ShutdownTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{url: "https://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1),
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}}
	go func() { ts.done <- srv.Serve(ctx, ln, mln) }()
	t.Cleanup(func() { cancel(); <-ts.done })
	return ts
}

func (ts *testServer) get(t *testing.T, path string) (int, string, *http.Response) {
	t.Helper()
	resp, err := ts.client.Get(ts.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

func TestServerReadinessHTTP2AndCertRotation(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "first")
	var ready atomic.Bool
	h, _ := webhook.NewHandler(realDecider(t))
	ts := startServer(t, h, ready.Load, certFile, keyFile)

	if code, _, _ := ts.get(t, "/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	if code, body, _ := ts.get(t, "/readyz"); code != 503 || !strings.Contains(body, "no policy snapshot") {
		t.Errorf("readyz before a snapshot: %d %q", code, body)
	}
	ready.Store(true)
	code, _, resp := ts.get(t, "/readyz")
	if code != 200 {
		t.Errorf("readyz after: %d", code)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("served %s, want HTTP/2", resp.Proto)
	}
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "first" {
		t.Fatalf("serving %q", cn)
	}
	time.Sleep(10 * time.Millisecond) // a later modification time
	writeCert(t, dir, "second")
	deadline := time.Now().Add(5 * time.Second)
	for {
		ts.client.CloseIdleConnections()
		_, _, resp := ts.get(t, "/healthz")
		if resp.TLS.PeerCertificates[0].Subject.CommonName == "second" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rotated certificate not served within 5s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestServerHTTP1Only: a client that would take HTTP/2 is answered in
// HTTP/1.1, on a kept-alive connection.
func TestServerHTTP1Only(t *testing.T) {
	certFile, keyFile := writeCert(t, t.TempDir(), "x")
	h, _ := webhook.NewHandler(realDecider(t))
	ts := startServer(t, h, func() bool { return true }, certFile, keyFile, func(s *webhook.Server) { s.HTTP1Only = true })
	for i := range 2 {
		req, _ := http.NewRequest("GET", ts.url+"/readyz", nil)
		reused, resp, err := doTraced(ts.client, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
			t.Fatalf("readyz: %d over %s, want 200 over HTTP/1.1", resp.StatusCode, resp.Proto)
		}
		if p := resp.TLS.NegotiatedProtocol; p != "http/1.1" {
			t.Errorf("ALPN chose %q, want http/1.1", p)
		}
		if i == 1 && !reused {
			t.Errorf("second request on a new connection: not kept alive")
		}
	}
}

// doTraced sends req, reads the answer's body and reports whether it went
// on a kept-alive connection.
func doTraced(c *http.Client, req *http.Request) (reused bool, resp *http.Response, err error) {
	trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { reused = ci.Reused }}
	resp, err = c.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err != nil {
		return reused, nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return reused, resp, nil
}

func TestServerDrainsInFlightOnShutdown(t *testing.T) {
	certFile, keyFile := writeCert(t, t.TempDir(), "x")
	entered := make(chan struct{})
	slowOK := deciderFunc(func(ctx context.Context, _ *workload.Object) (*rego.Decision, error) {
		close(entered)
		time.Sleep(500 * time.Millisecond)
		return &rego.Decision{Allowed: true}, nil
	})
	h, _ := webhook.NewHandler(slowOK)
	ts := startServer(t, h, nil, certFile, keyFile)
	result := make(chan int, 1)
	go func() {
		resp, err := ts.client.Post(ts.url+"/validate", "application/json", strings.NewReader(reviewJSON("CREATE", "Pod", "default", pod("default", "x"), "")))
		if err != nil {
			result <- -1
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	<-entered
	ts.cancel() // SIGTERM
	if code := <-result; code != 200 {
		t.Fatalf("request in flight during shutdown got %d", code)
	}
	if err := <-ts.done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	ts.done <- nil // for the cleanup
}
