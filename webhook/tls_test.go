package webhook_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/webhook"
	"github.com/prometheus/client_golang/prometheus"
)

// TestTLSProfiles makes real handshakes against the webhook and the metrics
// listener under each profile, with clients that offer only CBC suites,
// only TLS 1.2 AEAD suites, or TLS 1.3.
func TestTLSProfiles(t *testing.T) {
	clients := map[string]*tls.Config{
		"TLS 1.2 CBC only": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}},
		"TLS 1.2 RSA key exchange": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}},
		"TLS 1.2 ECDHE GCM":        {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
		"TLS 1.2 ECDHE ChaCha20":   {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
		"TLS 1.3":                  {MinVersion: tls.VersionTLS13},
	}
	cases := []struct {
		profile webhook.TLSProfile
		ok      map[string]bool // clients whose handshake succeeds
	}{
		{"", map[string]bool{"TLS 1.3": true}}, // the default is modern
		{webhook.TLSModern, map[string]bool{"TLS 1.3": true}},
		{webhook.TLSIntermediate, map[string]bool{"TLS 1.2 ECDHE GCM": true, "TLS 1.2 ECDHE ChaCha20": true, "TLS 1.3": true}},
	}
	for _, c := range cases {
		addr, metrics := serveWithMetrics(t, &webhook.Server{Handler: http.NotFoundHandler(), TLSProfile: c.profile, MetricsTLS: true})
		for name, conf := range clients {
			for listener, a := range map[string]string{"webhook": addr, "metrics": metrics} {
				t.Run(string(c.profile)+"/"+name+"/"+listener, func(t *testing.T) {
					conf := conf.Clone()
					conf.InsecureSkipVerify = true
					conn, err := tls.Dial("tcp", a, conf)
					if c.ok[name] != (err == nil) {
						t.Fatalf("handshake error %v; want success %v", err, c.ok[name])
					}
					if err == nil {
						conn.Close()
					}
				})
			}
		}
	}
}

func TestParseTLSProfile(t *testing.T) {
	for in, ok := range map[string]bool{"modern": true, "intermediate": true, "old": false, "": false, "Modern": false} {
		if _, err := webhook.ParseTLSProfile(in); (err == nil) != ok {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// TestMetricsTLSAndToken: with MetricsTLS and MetricsToken, /metrics is
// served over TLS only and only to the token's bearer.
func TestMetricsTLSAndToken(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "imagegate_test_total", Help: "x"})
	reg.MustRegister(c)
	c.Inc()
	_, metrics := serveWithMetrics(t, &webhook.Server{Handler: http.NotFoundHandler(), Gatherer: reg, MetricsTLS: true, MetricsToken: "s3cret"})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	cases := []struct {
		name, url, auth string
		code            int
	}{
		{"plain HTTP", "http://" + metrics + "/metrics", "Bearer s3cret", http.StatusBadRequest},
		{"no token", "https://" + metrics + "/metrics", "", http.StatusUnauthorized},
		{"wrong token", "https://" + metrics + "/metrics", "Bearer nope", http.StatusUnauthorized},
		{"basic, not bearer", "https://" + metrics + "/metrics", "Basic czNjcmV0", http.StatusUnauthorized},
		{"the token", "https://" + metrics + "/metrics", "Bearer s3cret", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", tc.url, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code {
				t.Fatalf("%d %s; want %d", resp.StatusCode, b, tc.code)
			}
			if served := strings.Contains(string(b), "imagegate_test_total 1"); served != (tc.code == http.StatusOK) {
				t.Errorf("metrics served: %v: %s", served, b)
			}
		})
	}
}
