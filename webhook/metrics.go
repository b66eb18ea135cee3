package webhook

import "github.com/prometheus/client_golang/prometheus"

// metrics are the webhook's imagegate_ series.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// Sub-millisecond buckets: a warm decision takes tens of microseconds.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_admission_requests_total",
			Help: "Admission requests by decision (allowed, denied, error, skipped) and operation.",
		}, []string{"decision", "operation"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imagegate_admission_duration_seconds",
			Help:    "Time to answer an admission request, by decision.",
			Buckets: latencyBuckets,
		}, []string{"decision"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagegate_admission_in_flight",
			Help: "Admission requests being answered now.",
		}),
	}
	// Zero series for what the webhook configurations send, so that an
	// alert on increase() sees the first error or denial of a process (a
	// series that appears at 1 has no increase).
	for _, d := range []string{"allowed", "denied", "error", "skipped"} {
		for _, op := range []string{"CREATE", "UPDATE"} {
			m.requests.WithLabelValues(d, op)
		}
	}
	m.requests.WithLabelValues("error", "") // not an AdmissionReview
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.inFlight)
	}
	return m
}

// mutationMetrics are the Mutator's imagegate_ series.
type mutationMetrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	inFlight    prometheus.Gauge
	resolutions *prometheus.CounterVec
}

func newMutationMetrics(reg prometheus.Registerer) *mutationMetrics {
	m := &mutationMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_mutation_requests_total",
			Help: "Digest pinning requests by result (patched, unchanged, skipped, error).",
		}, []string{"result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imagegate_mutation_duration_seconds",
			Help:    "Time to answer a digest pinning request, by result.",
			Buckets: latencyBuckets,
		}, []string{"result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagegate_mutation_in_flight",
			Help: "Digest pinning requests being answered now.",
		}),
		resolutions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_digest_resolutions_total",
			Help: "Tags resolved for digest pinning, by result (ok; error: the image was left by tag).",
		}, []string{"result"}),
	}
	for _, r := range []string{"patched", "unchanged", "skipped", "error"} {
		m.requests.WithLabelValues(r)
	}
	m.resolutions.WithLabelValues("ok")
	m.resolutions.WithLabelValues("error")
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.inFlight, m.resolutions)
	}
	return m
}
