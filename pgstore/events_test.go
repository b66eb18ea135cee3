package pgstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/audit/storetest"
	"github.com/imagegate/imagegate/internal/pgtest"
	"github.com/imagegate/imagegate/pgstore"
)

func openEvents(t *testing.T, db *pgstore.DB) *pgstore.Events {
	t.Helper()
	ev, err := db.Events()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	return ev
}

func TestEventsRules(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Subject {
		db, _ := openDB(t)
		return openEvents(t, db)
	})
}

// Retention drops whole days: the partitions whose day ended before the
// cut-off, with their events; the others stay.
func TestEventsRetentionDropsPartitions(t *testing.T) {
	db, _ := openDB(t)
	ev := openEvents(t, db)
	// 600 events from 23:00 on Nov 1 to 08:59 on Nov 2.
	storetest.Write(t, ev, 600)
	for _, c := range []struct {
		name        string
		before      time.Time
		wantDropped []string
		wantLeft    int
	}{
		{"inside the first day: nothing", storetest.T0.Add(30 * time.Minute), nil, 600},
		{"at the end of the first day", time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), []string{"imagegate_audit_events_20261101"}, 540},
		{"again: nothing more", time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC), nil, 540},
	} {
		t.Run(c.name, func(t *testing.T) {
			dropped, err := ev.DropBefore(context.Background(), c.before)
			if err != nil || strings.Join(dropped, ",") != strings.Join(c.wantDropped, ",") {
				t.Fatalf("dropped %v (%v), want %v", dropped, err, c.wantDropped)
			}
			n := 0
			q := audit.Query{Limit: audit.MaxLimit}
			page, err := ev.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			n = len(page.Events)
			if n != c.wantLeft {
				t.Errorf("%d events left, want %d", n, c.wantLeft)
			}
		})
	}
	// Writing into a dropped day again recreates its partition.
	if err := ev.Write([]*audit.Event{storetest.Synthetic(1)}); err != nil {
		t.Errorf("write into a dropped day: %v", err)
	}
}

// The database away: batches are held (bounded, the excess dropped and
// counted) and written once it is back, in order, nothing lost but the
// dropped.
func TestEventsHeldWhileDatabaseDown(t *testing.T) {
	srv := pgtest.Start(t)
	defer srv.Stop()
	db, err := pgstore.Open(context.Background(), srv.URL("postgres"), pgstore.WithBacklog(250),
		pgstore.WithWriteTimeout(time.Second), pgstore.WithRetryInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev := openEvents(t, db)
	batch := func(from, n int) []*audit.Event {
		var out []*audit.Event
		for i := from; i < from+n; i++ {
			out = append(out, storetest.Synthetic(i))
		}
		return out
	}
	if err := ev.Write(batch(0, 100)); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	for deadline := time.Now().Add(3 * time.Second); ev.Write(batch(100, 100)) == nil; {
		if time.Now().After(deadline) {
			t.Fatal("writes succeed with the database down")
		}
	}
	err = ev.Write(batch(200, 200))
	if err == nil || !strings.Contains(err.Error(), "250 events held for retry") {
		t.Fatalf("error %v, want 250 held", err)
	}
	if h := ev.Held(); h != 250 {
		t.Errorf("held %d, want 250 (the bound)", h)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The retry loop writes them with no new batch coming.
	for deadline := time.Now().Add(30 * time.Second); ev.Held() > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d events still held after the database came back", ev.Held())
		}
	}
	page, err := ev.Query(audit.Query{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	// The first 100 before the outage, and the newest 250 of the 300 after.
	if len(page.Events) != 350 || page.Events[0].ID != storetest.Synthetic(399).ID || page.Events[249].ID != storetest.Synthetic(150).ID ||
		page.Events[250].ID != storetest.Synthetic(99).ID {
		t.Errorf("%d events after the outage", len(page.Events))
	}
}

func TestEventsStats(t *testing.T) {
	storetest.RunStats(t, func(t *testing.T) storetest.StatsSubject {
		db, _ := openDB(t)
		return openEvents(t, db)
	})
}

func TestEventsGet(t *testing.T) {
	db, _ := openDB(t)
	storetest.RunGet(t, openEvents(t, db))
}
