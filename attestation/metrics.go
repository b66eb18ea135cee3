package attestation

import "github.com/prometheus/client_golang/prometheus"

type verifierMetrics struct {
	requests *prometheus.CounterVec
	cache    *prometheus.CounterVec
	latency  prometheus.Histogram
}

func newVerifierMetrics(reg prometheus.Registerer) *verifierMetrics {
	m := &verifierMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_registry_requests_total",
			Help: "Requests to registries by registry and HTTP status (or error).",
		}, []string{"registry", "status"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_verification_cache_total",
			Help: "Verification cache lookups by cache (digest, signatures) and result (hit, miss, join: single-flight, stale: served past TTL on a registry error).",
		}, []string{"cache", "result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "imagegate_verification_duration_seconds",
			Help:    "Time to verify one image against its attestors.",
			Buckets: []float64{.000001, .00001, .0001, .001, .01, .1, .5, 1, 2.5, 5, 10},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.cache, m.latency)
	}
	return m
}
