package webhook_test

import (
	"testing"

	"github.com/imagegate/imagegate/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsStartAtZero: before any request, the outcomes alerts count
// are exposed at 0, so that increase() sees the first one (a series first
// scraped at 1 has no increase, and the first undecided admission of a
// process would be missed).
func TestMetricsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := webhook.NewHandler(realDecider(t), webhook.WithRegisterer(reg)); err != nil {
		t.Fatal(err)
	}
	if _, err := webhook.NewMutator(nil, webhook.WithRegisterer(reg)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		want int
	}{
		{"imagegate_admission_requests_total", 9}, // 4 decisions × CREATE, UPDATE, and error for a request that is no review
		{"imagegate_mutation_requests_total", 4},
		{"imagegate_digest_resolutions_total", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := testutil.GatherAndCount(reg, tt.name)
			if err != nil || n != tt.want {
				t.Errorf("%d series (err %v), want %d", n, err, tt.want)
			}
		})
	}
	if got := counter(t, reg, "imagegate_mutation_requests_total", "error"); got != 0 {
		t.Errorf("imagegate_mutation_requests_total{result=error} = %v at start", got)
	}
}
