package attestation

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestCredClientsBounded: at most credClientEntries names are kept, and a
// client serves at most credClientUses requests (so keeps at most that
// many repositories' readers and tokens) before a new one is built.
func TestCredClientsBounded(t *testing.T) {
	now := time.Unix(0, 0)
	c := newCredClients(func() time.Time { return now })
	builds := 0
	build := func() (*remote.Puller, error) { builds++; return nil, nil }
	for i := range 3 * credClientEntries {
		c.get(fmt.Sprintf("ns%d/default/", i), build)
		if len(c.m) > credClientEntries {
			t.Fatalf("%d clients kept, bound %d", len(c.m), credClientEntries)
		}
	}
	builds = 0
	for range 2*credClientUses + 1 {
		c.get("team/default/pull", build)
	}
	if builds != 3 {
		t.Errorf("%d clients built for %d requests, want 3 (one per %d)", builds, 2*credClientUses+1, credClientUses)
	}
	if _, err := c.get("", build); err != nil || builds != 4 {
		t.Errorf("an unnamed request must get its own client: %d builds", builds)
	}
	if _, ok := c.m[""]; ok {
		t.Errorf("an unnamed client was kept")
	}
}
