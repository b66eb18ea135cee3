package webhook_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imagegate/imagegate/webhook"
	"github.com/prometheus/client_golang/prometheus"
)

// writeCertUntil writes a self-signed pair expiring at notAfter.
func writeCertUntil(t *testing.T, dir string, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "imagegate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, DNSNames: []string{"imagegate.imagegate-system.svc"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// gaugeValue gathers reg and returns the value of the gauge named name.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s among %d families", name, len(mfs))
	return 0
}

// TestCertExpiryGauge: the gauge is the served certificate's NotAfter, and
// follows a rotation once the reloader has picked it up.
func TestCertExpiryGauge(t *testing.T) {
	dir := t.TempDir()
	first := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	certFile, keyFile := writeCertUntil(t, dir, first)
	certs, err := webhook.NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(webhook.CertExpiryCollector(certs))
	if got := gaugeValue(t, reg, webhook.CertExpiryMetric); got != float64(first.Unix()) {
		t.Errorf("expiry %v, want %v", got, first.Unix())
	}
	rotated := time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second)
	writeCertUntil(t, dir, rotated)
	// A later modification time than the first pair's, however coarse the
	// file system's clock.
	later := time.Now().Add(time.Minute)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if got := gaugeValue(t, reg, webhook.CertExpiryMetric); got != float64(first.Unix()) {
		t.Errorf("before the reload the gauge moved to %v", got)
	}
	if changed, err := certs.Reload(); err != nil || !changed {
		t.Fatalf("reload: changed=%v err=%v", changed, err)
	}
	if got := gaugeValue(t, reg, webhook.CertExpiryMetric); got != float64(rotated.Unix()) {
		t.Errorf("after rotation expiry %v, want %v", got, rotated.Unix())
	}
}
