package webhook_test

import (
	"testing"

	"github.com/imagegate/imagegate/test/load/reviews"
)

// maxWarmAllocs holds the allocations of one warm admission of test/load's
// repeated pod (BenchmarkHandlerLoad/shape=repeated), the test's own
// httptest request and recorder (about 15) included. Raise it only with a
// reason; docs/benchmarks.md reports the figure. 71: one more since the
// decision input carries the namespace's BinarySecurityPolicies (images, mode).
const maxWarmAllocs = 71

// TestWarmAdmissionAllocs counts allocations, which do not depend on the
// machine, instead of timing the hot path.
func TestWarmAdmissionAllocs(t *testing.T) {
	h := loadHandler(t)
	body := reviews.Review(reviews.Repeated, 1, "default")
	serveOnce(t, h, body) // the decision and the parsed references cached
	got := testing.AllocsPerRun(200, func() { serveOnce(t, h, body) })
	if got > maxWarmAllocs {
		t.Errorf("a warm admission allocates %.0f times, more than %d", got, maxWarmAllocs)
	}
	t.Logf("%.0f allocations per warm admission", got)
}
