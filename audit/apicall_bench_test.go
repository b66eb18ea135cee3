package audit_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
)

// BenchmarkRecordAPICall is the management API's cost of auditing a call:
// the enqueue alone (worker held in a sink) and with the worker building
// and writing events.
func BenchmarkRecordAPICall(b *testing.B) {
	c := audit.APICall{RequestID: "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0", Principal: "alice", Groups: []string{"security"},
		Action: "imagegate:CreateOpaStrategyNew", Resource: "imagegate:opastrategy/7", Decision: "refused (ExplicitDeny) by cp-x Statement[0]",
		PolicyID: "cp-x", Statement: 0, SourceIP: "10.0.0.1", Status: 403, Code: "NoPermission"}
	b.Run("queued, worker busy", func(b *testing.B) {
		sink := &stalledSink{release: make(chan struct{}), entered: make(chan struct{})}
		rec, err := audit.NewRecorder([]audit.Sink{sink}, audit.WithQueueSize(1<<18))
		if err != nil {
			b.Fatal(err)
		}
		rec.RecordAPICall(c)
		<-sink.entered
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i == 1<<18-1 {
				b.Fatal("queue full: run with -benchtime below 262143x")
			}
			rec.RecordAPICall(c)
		}
		close(sink.release)
		rec.Close()
	})
	b.Run("queued, worker writing", func(b *testing.B) {
		rec, err := audit.NewRecorder([]audit.Sink{discardSink{}}, audit.WithQueueSize(1<<20))
		if err != nil {
			b.Fatal(err)
		}
		defer rec.Close()
		b.ReportAllocs()
		for b.Loop() {
			rec.RecordAPICall(c)
		}
	})
}

// BenchmarkStoreQueryAPI answers queries over a mixed store: 200,000
// admissions and 200,000 API calls interleaved (built once in the temp
// directory), API queries next to the admission queries they share the
// store with.
func BenchmarkStoreQueryAPI(b *testing.B) {
	const n = 200000
	path := filepath.Join(os.TempDir(), "imagegate-audit-bench-api-200k.db")
	if _, err := os.Stat(path); err != nil {
		tmp := path + ".tmp"
		os.Remove(tmp)
		s, err := audit.OpenStore(tmp)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		writeSynthetic(b, s, n)
		evs := make([]*audit.Event, 0, 10000)
		for i := range n {
			evs = append(evs, apiEvent(i))
			if len(evs) == cap(evs) || i == n-1 {
				if err := s.Write(evs); err != nil {
					b.Fatal(err)
				}
				evs = evs[:0]
			}
		}
		b.Logf("wrote %d events in %v", 2*n, time.Since(start))
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
	}
	s := audit.ReadStore(path)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	queries := []struct {
		name string
		q    audit.Query
	}{
		{"api: all", audit.Query{Type: audit.TypeAPI}},
		{"api: principal", audit.Query{Principal: "bob"}},
		{"api: action", audit.Query{APIActions: []string{"imagegate:CreateOpaStrategyNew"}}},
		{"api: principal+action", audit.Query{Principal: "alice", APIActions: []string{"imagegate:ListOpaClusterStrategyNew"}}},
		{"api: principal+window", audit.Query{Principal: "ci", Since: at(100000), Until: at(100600)}},
		{"admission: all (type)", audit.Query{Type: audit.TypeAdmission}},
		{"admission: namespace", audit.Query{Namespace: "ns1"}},
		{"admission: namespace+action", audit.Query{Namespace: "ns2", Actions: []string{"block"}}},
		{"both: newest", audit.Query{}},
	}
	for _, qq := range queries {
		b.Run(qq.name, func(b *testing.B) {
			q := qq.q
			q.Limit = 100
			for b.Loop() {
				page, err := s.Query(q)
				if err != nil || len(page.Events) != 100 {
					b.Fatalf("%d events, %v", len(page.Events), err)
				}
			}
		})
	}
}
