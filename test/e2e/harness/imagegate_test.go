package harness

import (
	"strings"
	"testing"
)

// A test that brings its own certificate must say when imagegate is ready:
// the harness refuses before it builds or starts anything.
func TestRunImagegateOwnServingCertNeedsReadyWhen(t *testing.T) {
	o := NewOwner(t.Name())
	defer o.Close()
	err := o.Run(func() { RunImagegate(o, []string{"--tls-cert-file", "x"}, OwnServingCert()) })
	if err == nil || !strings.Contains(err.Error(), "OwnServingCert needs ReadyWhen") {
		t.Fatalf("RunImagegate with OwnServingCert and no ReadyWhen: %v, want a refusal naming ReadyWhen", err)
	}
}
