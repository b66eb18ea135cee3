package audit_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
)

// benchStore is a store of n synthetic events (one a minute over about two
// years, 3 namespaces, 5 actions, 4 repositories in 2 teams), built once and
// kept in the temp directory between runs: building 1,000,000 takes minutes.
func benchStore(b *testing.B, n int) *audit.Store {
	b.Helper()
	// "-counters": stores built before there were hourly counters lack them.
	path := filepath.Join(os.TempDir(), "imagegate-audit-bench-"+itoa(n)+"-counters.db")
	if _, err := os.Stat(path); err == nil {
		return audit.ReadStore(path)
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	s, err := audit.OpenStore(tmp)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	writeSynthetic(b, s, n)
	b.Logf("wrote %d events in %v", n, time.Since(start))
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return audit.ReadStore(path)
}

func itoa(n int) string {
	if n%1000000 == 0 {
		return string(rune('0'+n/1000000)) + "M"
	}
	return string(rune('0'+n/1000)) + "k"
}

// BenchmarkStoreQuery answers filtered queries (a page of 100, newest
// first) over 1,000,000 events; each op opens the file, as imagegate events
// and the API do.
func BenchmarkStoreQuery(b *testing.B) {
	const n = 1000000
	s := benchStore(b, n)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	page1, err := s.Query(audit.Query{Namespace: "ns1", Limit: 100})
	if err != nil {
		b.Fatal(err)
	}
	queries := []struct {
		name string
		q    audit.Query
	}{
		{"newest", audit.Query{}},
		{"namespace", audit.Query{Namespace: "ns1"}},
		{"namespace page 2", audit.Query{Namespace: "ns1", PageToken: page1.NextPageToken}},
		{"action", audit.Query{Actions: []string{"unsigned"}}},
		{"namespace+action", audit.Query{Namespace: "ns2", Actions: []string{"block"}}},
		{"namespace+2 actions", audit.Query{Namespace: "ns2", Actions: []string{"block", "alert"}}},
		{"image glob", audit.Query{Image: "*/team1/app3"}},
		{"image glob+namespace+action", audit.Query{Image: "registry.example.com/team0/*", Namespace: "ns0", Actions: []string{"block"}}},
		{"since+until window", audit.Query{Since: at(500000), Until: at(500500)}},
		{"window+namespace+action", audit.Query{Since: at(100000), Until: at(400000), Namespace: "ns0", Actions: []string{"error"}}},
		{"old window+image", audit.Query{Since: at(1000), Until: at(2000), Image: "*app2"}},
		{"no match (image)", audit.Query{Image: "nginx"}},
		{"sparse intersection", audit.Query{Namespace: "ns0", Actions: []string{"block"}, Image: "*app1"}},
	}
	for _, qq := range queries {
		b.Run(qq.name, func(b *testing.B) {
			q := qq.q
			q.Limit = 100
			for b.Loop() {
				if _, err := s.Query(q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStoreWrite is the sink's cost per event, in batches of 256.
func BenchmarkStoreWrite(b *testing.B) {
	s, err := audit.OpenStore(filepath.Join(b.TempDir(), "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]*audit.Event, 256)
	i := 0
	for b.Loop() {
		for j := range evs {
			evs[j] = synthetic(i)
			i++
		}
		if err := s.Write(evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/event")
}

// BenchmarkStoreStats answers the console's overview from the hourly
// counters over 1,000,000 events (one a minute: 60 per hour): the cost
// grows with the window's hours and distinct values, not with the events.
func BenchmarkStoreStats(b *testing.B) {
	s := benchStore(b, 1000000)
	end := t0.Add(900000 * time.Minute).Truncate(time.Hour)
	for _, c := range []struct {
		name   string
		window time.Duration
		step   time.Duration
		by     string
	}{
		{"24h by action", 24 * time.Hour, time.Hour, audit.ByAction},
		{"7d by namespace", 7 * 24 * time.Hour, time.Hour, audit.ByNamespace},
		{"30d by image 6h", 30 * 24 * time.Hour, 6 * time.Hour, audit.ByImage},
		{"62d by cluster 24h", 62 * 24 * time.Hour, 24 * time.Hour, audit.ByCluster},
	} {
		b.Run(c.name, func(b *testing.B) {
			q := audit.StatsQuery{Since: end.Add(-c.window), Until: end, Step: c.step, By: c.by}
			for b.Loop() {
				st, err := s.Stats(q)
				if err != nil || st.Totals[audit.ActionBlock] == 0 {
					b.Fatalf("%v %v", st, err)
				}
			}
		})
	}
}
