package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestPolicyMetrics: every counted outcome is exposed at zero before it
// first happens, and imagegate_policy_set_rejected follows the last load.
func TestPolicyMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newPolicyMetrics(reg)
	expect := func(step, want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
			"imagegate_policy_loads_total", "imagegate_policy_reload_rejected_total", "imagegate_policy_set_rejected"); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	const help = `# HELP imagegate_policy_loads_total Policy snapshot loads by result (ok, error).
# TYPE imagegate_policy_loads_total counter
# HELP imagegate_policy_reload_rejected_total Policy sets refused although valid, by reason (empty: it would have ended enforcement).
# TYPE imagegate_policy_reload_rejected_total counter
# HELP imagegate_policy_set_rejected 1 while the policy set last read from the source was rejected and an older snapshot (or none) stays in force; 0 once one loads.
# TYPE imagegate_policy_set_rejected gauge
`
	expect("at start", help+`imagegate_policy_loads_total{result="error"} 0
imagegate_policy_loads_total{result="ok"} 0
imagegate_policy_reload_rejected_total{reason="empty"} 0
imagegate_policy_set_rejected 0
`)
	m.loaded()
	m.failed(false)
	expect("after an invalid set", help+`imagegate_policy_loads_total{result="error"} 1
imagegate_policy_loads_total{result="ok"} 1
imagegate_policy_reload_rejected_total{reason="empty"} 0
imagegate_policy_set_rejected 1
`)
	m.failed(true)
	expect("after an empty set", help+`imagegate_policy_loads_total{result="error"} 2
imagegate_policy_loads_total{result="ok"} 1
imagegate_policy_reload_rejected_total{reason="empty"} 1
imagegate_policy_set_rejected 1
`)
	m.loaded()
	expect("after a good set", help+`imagegate_policy_loads_total{result="error"} 2
imagegate_policy_loads_total{result="ok"} 2
imagegate_policy_reload_rejected_total{reason="empty"} 1
imagegate_policy_set_rejected 0
`)
}
