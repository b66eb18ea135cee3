package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeClientPKI writes a CA and a client certificate it issued (for
// "kube-apiserver") into dir, and returns the CA file and the client pair.
func writeClientPKI(t *testing.T, dir string) (caFile string, client tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhook-client-ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	caFile = filepath.Join(dir, "client-ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestServeListenerSecurity runs the real binary with the listener flags:
// reviews need the API server's client certificate and are audited as
// authenticated, TLS 1.2 is refused under the default profile, and
// /metrics is TLS behind a bearer token.
func TestServeListenerSecurity(t *testing.T) {
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	os.WriteFile(filepath.Join(policies, "s.yaml"), fmt.Appendf(nil, blockStrategy, 2), 0o644)
	cert, key := selfSignedCert(t, dir)
	caFile, clientCert := writeClientPKI(t, dir)
	tokenFile := filepath.Join(dir, "metrics-token")
	os.WriteFile(tokenFile, []byte("m3trics\n"), 0o600)
	listen, metrics := freePort(t), freePort(t)
	cmd := exec.Command(binary, "serve", "--policies", policies, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--listen", listen, "--metrics-listen", metrics, "--client-ca-file", caFile, "--require-client-cert",
		"--metrics-tls", "--metrics-token-file", tokenFile, "--audit-log", "-")
	var stdout, logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	anon := serveClient()
	waitReady(t, anon, listen) // probes need no client certificate
	apiserver := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, Certificates: []tls.Certificate{clientCert}}}}
	tls12 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{clientCert}}}}
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"kind":"Pod"},"namespace":"default","operation":"CREATE",` +
		`"userInfo":{"username":"system:admin"},"object":{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"bad-app:1"}]}}}}`
	cases := []struct {
		name   string
		client *http.Client
		method string
		url    string
		header string
		code   int // 0: the connection fails
	}{
		{"review without a client certificate", anon, "POST", "https://" + listen + "/validate", "", http.StatusUnauthorized},
		{"review from the API server", apiserver, "POST", "https://" + listen + "/validate", "", http.StatusOK},
		{"TLS 1.2 under the modern profile", tls12, "POST", "https://" + listen + "/validate", "", 0},
		{"metrics over plain HTTP", anon, "GET", "http://" + metrics + "/metrics", "Bearer m3trics", http.StatusBadRequest},
		{"metrics without the token", anon, "GET", "https://" + metrics + "/metrics", "", http.StatusUnauthorized},
		{"metrics with the token", anon, "GET", "https://" + metrics + "/metrics", "Bearer m3trics", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.method == "POST" {
				body = strings.NewReader(review)
			}
			req, _ := http.NewRequest(c.method, c.url, body)
			req.Header.Set("Content-Type", "application/json")
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			resp, err := c.client.Do(req)
			if c.code == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("connected: %d", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Errorf("%d %s; want %d", resp.StatusCode, b, c.code)
			}
		})
	}
	stopServe(t, cmd)
	// One event: the API server's review, authenticated, by its certificate.
	var events []map[string]any
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			events = append(events, ev)
		}
	}
	if len(events) != 1 || events[0]["authenticated"] != true || events[0]["client"] != "CN=kube-apiserver" {
		t.Errorf("audit events %v; want one, authenticated by CN=kube-apiserver", events)
	}
}

func TestServeListenerFlagErrors(t *testing.T) {
	base := []string{"serve", "--policies", "p", "--cluster-id", "c", "--tls-cert-file", "nope.crt", "--tls-private-key-file", "nope.key"}
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"--tls-profile", "old"}, `--tls-profile: TLS profile "old": expected modern or intermediate`},
		{[]string{"--require-client-cert"}, "--require-client-cert needs --client-ca-file"},
		{[]string{"--metrics-token-file", "t"}, "--metrics-token-file needs --metrics-tls"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			_, errOut, code := runCLI(t, "", append(append([]string{}, base...), c.args...)...)
			// Found before serve reads its certificate.
			if code != 2 || !strings.Contains(errOut, c.msg) || strings.Contains(errOut, "nope.crt") {
				t.Errorf("exit %d: %s", code, errOut)
			}
		})
	}
}

// TestServeAPIListenerSecurity: the management API listener has the
// webhook's TLS profile and limits: TLS 1.2 is refused under the default
// profile and headers over 64 KiB are answered 431.
func TestServeAPIListenerSecurity(t *testing.T) {
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	cert, key := selfSignedCert(t, dir)
	tokens := filepath.Join(dir, "tokens.csv")
	os.WriteFile(tokens, []byte("admin-secret,root,imagegate:admins\n"), 0o600)
	listen, apiListen := freePort(t), freePort(t)
	cmd := exec.Command(binary, "serve", "--policies", policies, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--listen", listen, "--metrics-listen", "", "--api-listen", apiListen, "--api-tokens", tokens, "--api-state", filepath.Join(dir, "iam.json"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	client := serveClient()
	waitReady(t, client, listen)
	tls12 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}}}
	cases := []struct {
		name   string
		client *http.Client
		header string
		code   int // 0: the connection fails
	}{
		{"TLS 1.3", client, "", http.StatusUnauthorized}, // no token: reached the API
		{"TLS 1.2", tls12, "", 0},
		{"100 KiB of headers", client, strings.Repeat("x", 100<<10), http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "https://"+apiListen+"/", strings.NewReader("Action=ListOpaClusterStrategyNew"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if c.header != "" {
				req.Header.Set("X-Big", c.header)
			}
			resp, err := c.client.Do(req)
			if c.code == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("connected: %d", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Errorf("%d, want %d", resp.StatusCode, c.code)
			}
		})
	}
	stopServe(t, cmd)
}

// TestServeHTTP2Flag: --listen offers only HTTP/1.1 unless --http2 is
// given, whatever the client prefers.
func TestServeHTTP2Flag(t *testing.T) {
	for _, c := range []struct {
		flags []string
		want  string
	}{{nil, "http/1.1"}, {[]string{"--http2"}, "h2"}} {
		t.Run(c.want, func(t *testing.T) {
			dir := t.TempDir()
			policies := filepath.Join(dir, "policies")
			os.Mkdir(policies, 0o755)
			cert, key := selfSignedCert(t, dir)
			listen := freePort(t)
			args := append([]string{"serve", "--policies", policies, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
				"--listen", listen, "--metrics-listen", ""}, c.flags...)
			cmd := exec.Command(binary, args...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			waitReady(t, serveClient(), listen)
			conn, err := tls.Dial("tcp", listen, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			conn.Close()
			if p := conn.ConnectionState().NegotiatedProtocol; p != c.want {
				t.Errorf("ALPN chose %q, want %q", p, c.want)
			}
			stopServe(t, cmd)
		})
	}
}
