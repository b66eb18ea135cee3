package webhook_test

import (
	"strings"
	"testing"

	"github.com/imagegate/imagegate/test/load/reviews"
)

// TestLoadShapes pins what test/load's requests are decided as, so the load
// figures in docs/benchmarks.md measure the outcomes they name.
func TestLoadShapes(t *testing.T) {
	h := loadHandler(t)
	for _, tc := range []struct {
		shape    reviews.Shape
		allowed  bool
		warnings bool
	}{
		{reviews.Repeated, true, false},
		{reviews.Distinct, true, false},
		{reviews.Alert, true, true},
		{reviews.Deny, false, false},
	} {
		w, out := post(t, h, string(reviews.Review(tc.shape, 1, "default")), "application/json", "")
		if w.Code != 200 || out.Response.Allowed != tc.allowed || (len(out.Response.Warnings) > 0) != tc.warnings {
			t.Errorf("%s: status %d allowed %v warnings %q", tc.shape, w.Code, out.Response.Allowed, out.Response.Warnings)
		}
		if tc.shape == reviews.Alert && !strings.Contains(strings.Join(out.Response.Warnings, "\n"), "load-9") {
			t.Errorf("alert: warnings %q do not name the label strategy", out.Response.Warnings)
		}
	}
}
