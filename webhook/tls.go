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
