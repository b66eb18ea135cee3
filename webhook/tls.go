package webhook

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// CertReloader serves a certificate and key from files, reloading them when
// they change so that a rotated certificate is used without a restart.
type CertReloader struct {
	certFile, keyFile string

	mu      sync.RWMutex
	cert    *tls.Certificate
	modTime time.Time
}

// NewCertReloader loads the pair once; a pair that does not load is an error.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	c := &CertReloader{certFile: certFile, keyFile: keyFile}
	if _, err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again if either changed. It keeps the current pair
// when the new one does not load (a half-written rotation).
func (c *CertReloader) Reload() (changed bool, err error) {
	mt, err := newest(c.certFile, c.keyFile)
	if err != nil {
		return false, err
	}
	c.mu.RLock()
	same := c.cert != nil && mt.Equal(c.modTime)
	c.mu.RUnlock()
	if same {
		return false, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return false, fmt.Errorf("loading TLS pair %s, %s: %w", c.certFile, c.keyFile, err)
	}
	c.mu.Lock()
	c.cert, c.modTime = &cert, mt
	c.mu.Unlock()
	return true, nil
}

// GetCertificate is for tls.Config.
func (c *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, nil
}

func newest(files ...string) (time.Time, error) {
	var t time.Time
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			return t, err
		}
		if info.ModTime().After(t) {
			t = info.ModTime()
		}
	}
	return t, nil
}

// TLSProfile names one of Mozilla's server-side TLS configurations
// (https://wiki.mozilla.org/Security/Server_Side_TLS); every TLS listener
// of serve uses the one chosen.
type TLSProfile string

const (
	// TLSModern is TLS 1.3 only: every TLS 1.3 suite is an AEAD with
	// forward secrecy. The API server, kubelet probes and Prometheus (all
	// Go) speak it.
	TLSModern TLSProfile = "modern"
	// TLSIntermediate adds TLS 1.2 with ECDHE key exchange and AEAD suites
	// (AES-GCM, ChaCha20-Poly1305) only: no CBC, no static RSA key
	// exchange. Mozilla's list also has DHE suites, which Go does not
	// implement.
	TLSIntermediate TLSProfile = "intermediate"
)

// DefaultTLSProfile is the profile of a Server that names none.
const DefaultTLSProfile = TLSModern

// intermediateSuites are the TLS 1.2 suites of TLSIntermediate, in
// Mozilla's order. TLS 1.3 suites are not configurable in Go (all are
// AEADs).
var intermediateSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ParseTLSProfile reads a --tls-profile value.
func ParseTLSProfile(s string) (TLSProfile, error) {
	switch p := TLSProfile(s); p {
	case TLSModern, TLSIntermediate:
		return p, nil
	}
	return "", fmt.Errorf("TLS profile %q: expected modern or intermediate", s)
}

// ServerTLSConfig is the configuration of a listener serving certs'
// certificate (HTTP/2 and HTTP/1.1) under profile p; an empty p is
// DefaultTLSProfile.
func ServerTLSConfig(p TLSProfile, certs *CertReloader) *tls.Config {
	c := &tls.Config{GetCertificate: certs.GetCertificate, NextProtos: []string{"h2", "http/1.1"}}
	switch p {
	case TLSIntermediate:
		c.MinVersion, c.CipherSuites = tls.VersionTLS12, intermediateSuites
	default:
		c.MinVersion = tls.VersionTLS13
	}
	return c
}
