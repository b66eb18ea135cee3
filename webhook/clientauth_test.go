package webhook_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/webhook"
)

// testCA is a CA that issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert, key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// client issues a client certificate for cn.
func (ca *testCA) client(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// chanSink hands the recorder's events to the test.
type chanSink chan *audit.Event

func (c chanSink) Name() string { return "chan" }
func (c chanSink) Write(evs []*audit.Event) error {
	for _, e := range evs {
		c <- e
	}
	return nil
}

// TestClientCertificates: with client CAs configured, a review that came
// with a certificate from them is recorded as authenticated (audit event
// "authenticated": true and the certificate's subject); one without is
// refused where a certificate is required and recorded as unauthenticated
// where it is not; a certificate from another CA fails the handshake;
// probes need none.
func TestClientCertificates(t *testing.T) {
	ca, rogue := newTestCA(t, "apiserver-client-ca"), newTestCA(t, "someone-else")
	apiserver, forger := ca.client(t, "kube-apiserver"), rogue.client(t, "kube-apiserver")
	events := make(chanSink, 10)
	rec, err := audit.NewRecorder([]audit.Sink{events})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	h, _ := webhook.NewHandler(realDecider(t), webhook.WithAuditor(rec))
	addrs := map[bool]string{
		true:  serveWith(t, &webhook.Server{Handler: webhook.RequireClientCert(h), ClientCAs: ca.pool()}),
		false: serveWith(t, &webhook.Server{Handler: h, ClientCAs: ca.pool()}),
	}
	// bad-app is blocked: every answered review is an audit event.
	body := reviewJSON("CREATE", "Pod", "default", pod("default", "bad-app:1"), "")
	body = strings.Replace(body, `"username":"alice"`, `"username":"system:admin"`, 1)
	cases := []struct {
		name     string
		required bool
		cert     *tls.Certificate
		path     string
		code     int    // 0: the handshake fails
		authn    string // the event's "authenticated", "" for no event
	}{
		{"required, no certificate", true, nil, "/validate", http.StatusUnauthorized, ""},
		{"required, the API server's certificate", true, &apiserver, "/validate", http.StatusOK, "true"},
		{"required, a certificate from another CA", true, &forger, "/validate", 0, ""},
		{"required, probes need none", true, nil, "/readyz", http.StatusOK, ""},
		{"optional, no certificate", false, nil, "/validate", http.StatusOK, "false"},
		{"optional, the API server's certificate", false, &apiserver, "/validate", http.StatusOK, "true"},
		{"optional, a certificate from another CA", false, &forger, "/validate", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf := &tls.Config{InsecureSkipVerify: true}
			if c.cert != nil {
				// Sent even when its issuer is not one the server asked
				// for (Go's default would then send none).
				conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.cert, nil }
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true}}
			var resp *http.Response
			var err error
			if c.path == "/validate" {
				resp, err = client.Post("https://"+addrs[c.required]+c.path+"?timeout=5s", "application/json", strings.NewReader(body))
			} else {
				resp, err = client.Get("https://" + addrs[c.required] + c.path)
			}
			if c.code == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("handshake succeeded: %d", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Fatalf("%d %s; want %d", resp.StatusCode, b, c.code)
			}
			if c.authn == "" {
				return
			}
			select {
			case ev := <-events:
				js, _ := json.Marshal(ev)
				if !strings.Contains(string(js), `"authenticated":`+c.authn) || ev.User.Username != "system:admin" {
					t.Errorf("event %s; want authenticated %s", js, c.authn)
				}
				if wantClient := c.authn == "true"; (ev.Client == "CN=kube-apiserver") != wantClient {
					t.Errorf("client %q", ev.Client)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no audit event")
			}
		})
	}
	select {
	case ev := <-events:
		t.Errorf("an event too many: %+v", ev)
	default:
	}
}
