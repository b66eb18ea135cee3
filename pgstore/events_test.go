package pgstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/audit/storetest"
	"github.com/imagegate/imagegate/internal/pgtest"
	"github.com/imagegate/imagegate/pgstore"
	"github.com/jackc/pgx/v5"
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
	// The default write timeout: a refused connection fails at once, and a
	// shorter one failed the first write (two partitions' DDL) on a loaded
	// machine, and cut commits short whose rows were stored nonetheless.
	db, err := pgstore.Open(context.Background(), srv.URL("postgres"), pgstore.WithBacklog(250),
		pgstore.WithRetryInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev, err := db.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close() // before the DB closes: no retries on a closed pool
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
	// Kill ends the backends too: no write gets through after it.
	if err := ev.Write(batch(100, 100)); err == nil {
		t.Fatal("a write succeeded with the database killed")
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

// A batch whose commit the database acknowledges only after the write
// timeout (here a trigger at commit that outlasts the timeout and ignores
// the client's cancel; in life a loaded server or a lost acknowledgement)
// is stored although the write reported failure. The retry of the held batch
// then meets its own rows: it must take them as written, once, and not
// be refused for duplicate keys on every retry while the backlog fills.
func TestEventsCommitAcknowledgedLate(t *testing.T) {
	db, url := openDB(t, pgstore.WithWriteTimeout(3*time.Second), pgstore.WithRetryInterval(50*time.Millisecond))
	ev := openEvents(t, db)
	storetest.Write(t, ev, 1) // creates the day's partition
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `
		CREATE SEQUENCE slow_commits;
		CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			-- Once (sequences ignore rollbacks), until the client gives up
			-- and cancels; then the commit goes through, as one already
			-- flushed would.
			IF nextval('slow_commits') = 1 THEN
				BEGIN
					PERFORM pg_sleep(60);
				EXCEPTION WHEN query_canceled THEN
				END;
			END IF;
			RETURN NULL;
		END $$;
		CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON imagegate_audit_events_20261101
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();`); err != nil {
		t.Fatal(err)
	}
	var batch []*audit.Event
	for i := 1; i < 50; i++ {
		batch = append(batch, storetest.Synthetic(i))
	}
	if err := ev.Write(batch); err == nil {
		t.Fatal("the write returned before its commit was acknowledged")
	}
	for deadline := time.Now().Add(30 * time.Second); ev.Held() > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d events still held: the retry is refused for the rows its first try stored", ev.Held())
		}
	}
	page, err := ev.Query(audit.Query{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 50 || page.Events[0].ID != storetest.Synthetic(49).ID || page.Events[49].ID != storetest.Synthetic(0).ID {
		t.Errorf("%d events, want the 50 written, each once", len(page.Events))
	}
	if err := ev.Write([]*audit.Event{storetest.Synthetic(50)}); err != nil {
		t.Errorf("a new batch after the retry: %v", err)
	}
}

// An image glob matching more repositories than are looked up one by one
// is applied to each event's repositories instead, with the same answer.
func TestEventsImageGlobOfManyRepositories(t *testing.T) {
	db, _ := openDB(t)
	ev := openEvents(t, db)
	var batch []*audit.Event
	for i := range 1200 {
		e := storetest.Synthetic(i*7 + 1) // never a multiple of 7: an admission
		e.Images = []audit.ImageEvent{{Image: fmt.Sprintf("registry.example.com/many/app%d:1", i), Action: e.Actions[0]}}
		batch = append(batch, e)
	}
	if err := ev.Write(batch); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		glob string
		want int
	}{
		{"registry.example.com/many/*", 1200},   // 1,200 repositories: the fallback
		{"registry.example.com/many/app1?", 10}, // 10: looked up
		{"registry.example.com/many/app7", 1},   // a plain name
		{"registry.example.com/other/*", 0},
	} {
		t.Run(c.glob, func(t *testing.T) {
			n, token := 0, ""
			for {
				page, err := ev.Query(audit.Query{Image: c.glob, Limit: audit.MaxLimit, PageToken: token})
				if err != nil {
					t.Fatal(err)
				}
				n += len(page.Events)
				if token = page.NextPageToken; token == "" {
					break
				}
			}
			if n != c.want {
				t.Errorf("%d events, want %d", n, c.want)
			}
		})
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
