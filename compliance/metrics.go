package compliance

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	mu        sync.Mutex
	violating *prometheus.GaugeVec
	set       map[[2]string]bool
	workloads prometheus.Gauge
	decided   *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	overflow  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		violating: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "imagegate_runtime_violating_workloads",
			Help: "Running workloads that break a policy now, by namespace and action (block, unsigned, alert, error); exported by the reporting replica only."},
			[]string{"namespace", "action"}),
		set: map[[2]string]bool{},
		workloads: prometheus.NewGauge(prometheus.GaugeOpts{Name: "imagegate_runtime_workloads",
			Help: "Workloads this replica keeps decided."}),
		decided: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imagegate_runtime_decisions_total",
			Help: "Workloads decided again, by what triggered it."}, []string{"trigger"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "imagegate_runtime_pass_seconds",
			Help: "Time to decide one batch of workloads again, by trigger.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)},
			[]string{"trigger"}),
		overflow: prometheus.NewCounter(prometheus.CounterOpts{Name: "imagegate_runtime_workloads_untracked_total",
			Help: "Workloads not tracked because the bound on tracked workloads was reached."}),
	}
	if reg != nil {
		if err := errors.Join(reg.Register(m.violating), reg.Register(m.workloads), reg.Register(m.decided),
			reg.Register(m.duration), reg.Register(m.overflow)); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(trigger string, n int, d time.Duration) {
	m.decided.WithLabelValues(trigger).Add(float64(n))
	m.duration.WithLabelValues(trigger).Observe(d.Seconds())
}

// setViolating replaces the gauge's series: a namespace with none left
// drops to zero, then away.
func (m *metrics) setViolating(counts map[[2]string]int, workloads int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.workloads.Set(float64(workloads))
	for k := range m.set {
		if counts[k] == 0 {
			m.violating.DeleteLabelValues(k[0], k[1])
			delete(m.set, k)
		}
	}
	for k, n := range counts {
		m.violating.WithLabelValues(k[0], k[1]).Set(float64(n))
		m.set[k] = true
	}
}
