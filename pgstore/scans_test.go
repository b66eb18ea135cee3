package pgstore_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/internal/pgtest"
	"github.com/imagegate/imagegate/pgstore"
	"github.com/imagegate/imagegate/scan"
	"github.com/imagegate/imagegate/scan/storetest"
	"github.com/imagegate/imagegate/workload"
	"github.com/jackc/pgx/v5"
)

func TestScansRules(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Subject {
		db, _ := openDB(t)
		return db.Scans()
	})
}

// Replicas starting together migrate once, without errors.
func TestMigrateConcurrently(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := pgstore.Open(context.Background(), url)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n, distinct int
	if err := conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT version) FROM imagegate_schema_migrations").Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != 3 || distinct != 3 {
		t.Errorf("%d migration rows (%d versions), want each of the 3 once", n, distinct)
	}
}

func critical(digest string, at time.Time) *scan.Record {
	return &scan.Record{Digest: digest, Scan: facts.Scan{ScannedAt: at, Source: "trivy",
		Findings: []facts.Finding{{Category: "Vul", ID: "CVE-2024-3094", Level: "high", Class: "cve"}}}}
}

// A write on one replica reaches the others' indexes through NOTIFY, well
// before their next poll.
func TestScansNotifyOtherReplicas(t *testing.T) {
	_, url := openDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var readers []*scan.Reader
	for range 3 {
		db, err := pgstore.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		r, err := scan.NewReader(ctx, db.Scans())
		if err != nil {
			t.Fatal(err)
		}
		go r.Watch(ctx, time.Hour, nil) // notifications only
		readers = append(readers, r)
	}
	writer, err := pgstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	time.Sleep(300 * time.Millisecond) // the listeners connect
	d := "sha256:" + strings.Repeat("d", 64)
	img := workload.ParseImage("registry.example.com/app@" + d)
	for _, step := range []struct {
		name   string
		write  func() error
		reason string
		cves   int
	}{
		{"scan", func() error { return writer.Scans().Import(ctx, []*scan.Record{critical(d, time.Now())}, nil) }, "", 1},
		{"malicious mark", func() error { return writer.Scans().Import(ctx, nil, map[string]string{d: "feed"}) }, "feed", 1},
		{"mark cleared", func() error { _, err := writer.Scans().ClearMalicious(ctx, d); return err }, "", 1},
	} {
		t.Run(step.name, func(t *testing.T) {
			start := time.Now()
			if err := step.write(); err != nil {
				t.Fatal(err)
			}
			for i, r := range readers {
				for {
					s, reason := r.Index().Lookup(img, "")
					if s != nil && len(s.Findings) == step.cves && reason == step.reason {
						break
					}
					if time.Since(start) > time.Second {
						t.Fatalf("replica %d: not seen within 1s (scan %v, reason %q)", i, s, reason)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			t.Logf("all replicas saw it in %s", time.Since(start).Round(time.Millisecond))
		})
	}
}

// The database away: lookups go on from memory, the reader says so, and
// catches up when it is back.
func TestScansDatabaseDown(t *testing.T) {
	srv := pgtest.Start(t)
	defer srv.Stop()
	ctx := context.Background()
	db, err := pgstore.Open(ctx, srv.URL("postgres"), pgstore.WithWriteTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := "sha256:" + strings.Repeat("e", 64)
	if err := db.Scans().Import(ctx, []*scan.Record{critical(d, time.Now())}, nil); err != nil {
		t.Fatal(err)
	}
	r, err := scan.NewReader(ctx, db.Scans(), scan.WithRefreshTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	img := workload.ParseImage("registry.example.com/app@" + d)
	srv.Kill()
	// A backend outlives its postmaster by a moment.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := r.Refresh(); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("refresh with the database down succeeded")
		}
	}
	if s, _ := r.Index().Lookup(img, ""); s == nil || len(s.Findings) != 1 {
		t.Errorf("scan lost while the database is down: %+v", s)
	}
	if st := r.Status(); !strings.Contains(st, "scan store unreachable since") {
		t.Errorf("status %q", st)
	}
	if err := db.Scans().Import(ctx, []*scan.Record{critical(d, time.Now())}, nil); err == nil {
		t.Error("import with the database down succeeded")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	other := "sha256:" + strings.Repeat("f", 64)
	deadline := time.Now().Add(10 * time.Second)
	for db.Scans().Import(ctx, []*scan.Record{critical(other, time.Now())}, nil) != nil {
		if time.Now().After(deadline) {
			t.Fatal("imports fail after the database came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := r.Refresh(); err != nil || r.Status() != "" {
		t.Fatalf("after the restart: %v, status %q", err, r.Status())
	}
	if s, _ := r.Index().Lookup(workload.ParseImage("registry.example.com/app@"+other), ""); s == nil {
		t.Error("a scan written after the restart is not seen")
	}
}
