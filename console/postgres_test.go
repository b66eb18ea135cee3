package console_test

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit/storetest"
	"github.com/imagegate/imagegate/console"
	"github.com/imagegate/imagegate/internal/pgtest"
	"github.com/imagegate/imagegate/pgstore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// The console over the shared PostgreSQL store: the same views through
// the same interfaces (skipped where PostgreSQL is not installed; make e2e
// runs it with PostgreSQL).
func TestEventsOverPostgreSQL(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	db, err := pgstore.Open(context.Background(), url)
	must(t, err)
	t.Cleanup(db.Close)
	events, err := db.Events()
	must(t, err)
	t.Cleanup(func() { events.Close() })
	storetest.Write(t, events, 300)
	e := newEnv(t, console.WithEvents(events))
	b := e.browser()
	b.signIn("admin-token")
	st, out := b.get("/api/events?namespace=ns1&action=block&limit=5")
	if evs, _ := out["events"].([]any); st != 200 || len(evs) != 5 || evs[0].(map[string]any)["namespace"] != "ns1" {
		t.Fatalf("events: %d %v", st, out)
	}
	want := storetest.Synthetic(5)
	if st, out = b.get("/api/events/" + want.ID); st != 200 || out["uid"] != want.UID {
		t.Fatalf("event: %d %v", st, out)
	}
	since := storetest.T0.Format(time.RFC3339)
	if st, out = b.get("/api/stats?by=cluster&since=" + since); st != 200 || len(out["series"].([]any)) != 2 || out["totals"].(map[string]any)["block"].(float64) == 0 {
		t.Fatalf("stats: %d %v", st, out)
	}
	if st, _, _ := b.do(http.MethodGet, "/api/stats?by=nothing", "", ""); st != 400 {
		t.Fatalf("bad stats query: %d", st)
	}
}
