package audit_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/audit/storetest"
)

func TestStoreStats(t *testing.T) {
	storetest.RunStats(t, func(t *testing.T) storetest.StatsSubject {
		s, err := audit.OpenStore(filepath.Join(t.TempDir(), "audit.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Pruned events leave the counters too, so the overview never counts
// events the store no longer has.
func TestStoreStatsPrune(t *testing.T) {
	s, err := audit.OpenStore(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	writeSynthetic(t, s, 600)
	q := audit.StatsQuery{Since: t0, Until: t0.Add(10 * time.Hour)}
	before, err := s.Stats(q)
	if err != nil {
		t.Fatal(err)
	}
	if before.Totals[audit.ActionBlock] != 120 {
		t.Fatalf("blocks before pruning: %d, want 120", before.Totals[audit.ActionBlock])
	}
	if _, err := s.Prune(t0.Add(5 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	after, err := s.Stats(q)
	if err != nil {
		t.Fatal(err)
	}
	if after.Totals[audit.ActionBlock] != 60 {
		t.Fatalf("blocks after pruning half: %d, want 60", after.Totals[audit.ActionBlock])
	}
	for _, se := range after.Series {
		for i := range 5 {
			if se.Counts[i] != 0 {
				t.Fatalf("series %s hour %d still counts %d after pruning", se.Name, i, se.Counts[i])
			}
		}
	}
}

func TestStoreGet(t *testing.T) {
	s, err := audit.OpenStore(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunGet(t, s)
}
