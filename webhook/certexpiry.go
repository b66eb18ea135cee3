package webhook

import (
	"crypto/x509"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CertExpiryMetric is the name of the serving certificate's expiry gauge.
const CertExpiryMetric = "imagegate_serving_certificate_expiry_timestamp_seconds"

// NotAfter is when the certificate being served expires; zero when it has
// none that parses (never the case after NewCertReloader succeeded).
func (c *CertReloader) NotAfter() time.Time {
	c.mu.RLock()
	cert := c.cert
	c.mu.RUnlock()
	if cert == nil || len(cert.Certificate) == 0 {
		return time.Time{}
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return time.Time{}
		}
	}
	return leaf.NotAfter
}

// CertExpiryCollector is the imagegate_serving_certificate_expiry_timestamp_seconds
// gauge: the Unix time at which the certificate served now expires, read at
// each scrape, so that a rotation shows at once and an alert can compare it
// with time(). A rotation that never happens (a renewal that keeps failing)
// shows as the value coming nearer.
func CertExpiryCollector(c *CertReloader) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: CertExpiryMetric,
		Help: "Unix time at which the serving certificate (--tls-cert-file, as last reloaded) expires.",
	}, func() float64 {
		t := c.NotAfter()
		if t.IsZero() {
			return 0
		}
		return float64(t.Unix())
	})
}
