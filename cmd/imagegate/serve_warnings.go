package main

import (
	"log/slog"
	"sync/atomic"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/policy"
	"github.com/prometheus/client_golang/prometheus"
)

// policyWarnings keeps what is suspicious about the snapshot in force (no
// objects, no object naming --cluster-id): serve admits everything then, as
// configured, so it says so at load (WARN), at /readyz and in metrics
// rather than refusing to start.
type policyWarnings struct {
	current        atomic.Pointer[[]string]
	unnamed, empty prometheus.Gauge
}

func newPolicyWarnings(reg prometheus.Registerer) *policyWarnings {
	p := &policyWarnings{
		unnamed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "imagegate_policy_cluster_unnamed",
			Help: "1 when no BinarySecurityPolicy or OpaStrategy of the snapshot in force names --cluster-id."}),
		empty: prometheus.NewGauge(prometheus.GaugeOpts{Name: "imagegate_policy_empty",
			Help: "1 when the snapshot in force has no Attestor, BinarySecurityPolicy or OpaStrategy."}),
	}
	reg.MustRegister(p.unnamed, p.empty)
	return p
}

// update is called with each snapshot put in force.
func (p *policyWarnings) update(snap *policy.Snapshot, clusterID string, log *slog.Logger) {
	ws := admission.SnapshotWarnings(snap, clusterID)
	p.current.Store(&ws)
	p.unnamed.Set(boolGauge(!admission.ClusterNamed(snap, clusterID)))
	p.empty.Set(boolGauge(admission.IsEmpty(snap)))
	for _, w := range ws {
		log.Warn("policy snapshot: "+w, "cluster", clusterID)
	}
}

// get returns the warnings of the snapshot in force.
func (p *policyWarnings) get() []string {
	if ws := p.current.Load(); ws != nil {
		return *ws
	}
	return nil
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
