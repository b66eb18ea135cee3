package main

import "github.com/prometheus/client_golang/prometheus"

// policyMetrics count policy snapshot loads and say whether the policy set
// the source holds now is in force. Every label value is created at zero
// up front: an alert on increase() cannot see a series whose first sample
// is already 1, so the first rejected reload of a process would be missed.
type policyMetrics struct {
	loads, rejected *prometheus.CounterVec
	failing         prometheus.Gauge
}

func newPolicyMetrics(reg prometheus.Registerer) *policyMetrics {
	m := &policyMetrics{
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_policy_loads_total", Help: "Policy snapshot loads by result (ok, error).",
		}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_policy_reload_rejected_total", Help: "Policy sets refused although valid, by reason (empty: it would have ended enforcement).",
		}, []string{"reason"}),
		failing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagegate_policy_set_rejected",
			Help: "1 while the policy set last read from the source was rejected and an older snapshot (or none) stays in force; 0 once one loads.",
		}),
	}
	m.loads.WithLabelValues("ok")
	m.loads.WithLabelValues("error")
	m.rejected.WithLabelValues("empty")
	reg.MustRegister(m.loads, m.rejected, m.failing)
	return m
}

// loaded counts a snapshot put in force.
func (m *policyMetrics) loaded() {
	m.loads.WithLabelValues("ok").Inc()
	m.failing.Set(0)
}

// failed counts a policy set that was not put in force; empty says it was
// valid but refused for ending enforcement.
func (m *policyMetrics) failed(empty bool) {
	if empty {
		m.rejected.WithLabelValues("empty").Inc()
	}
	m.loads.WithLabelValues("error").Inc()
	m.failing.Set(1)
}
