package attestation

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

type verifierMetrics struct {
	registries boundedLabels
	requests   *prometheus.CounterVec
	cache      *prometheus.CounterVec
	latency    prometheus.Histogram
}

func newVerifierMetrics(reg prometheus.Registerer, maxRegistries int) *verifierMetrics {
	m := &verifierMetrics{
		registries: boundedLabels{max: maxRegistries, seen: map[string]struct{}{}},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_registry_requests_total",
			Help: "Requests to registries by registry (the first ones seen; \"other\" past the bound) and HTTP status (or error).",
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

// request counts one registry request.
func (m *verifierMetrics) request(registry, status string) {
	m.requests.WithLabelValues(m.registries.label(registry), status).Inc()
}

// boundedLabels keeps a label's values to the first max seen: registry
// names come from pod specs, and every distinct one would otherwise be a
// series kept for the life of the process.
type boundedLabels struct {
	max  int
	mu   sync.Mutex
	seen map[string]struct{}
}

// otherLabel stands for every value past the bound.
const otherLabel = "other"

func (b *boundedLabels) label(v string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		return otherLabel
	}
	b.seen[v] = struct{}{}
	return v
}
