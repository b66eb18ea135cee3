package audit_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
)

// BenchmarkRecordDurability compares the default (queued) recording with
// --audit-sync (committed to the store before Record returns) for 8
// admissions at a time, each notable: events/s through to the store
// (Close included, so queued events count only once written) and the time
// Record adds to each admission.
func BenchmarkRecordDurability(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts []audit.Option
	}{{"async", nil}, {"sync", []audit.Option{audit.WithSync(audit.DefaultSyncTimeout)}}} {
		b.Run(mode.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "audit.db")
			store, err := audit.OpenStore(path)
			if err != nil {
				b.Fatal(err)
			}
			rec, err := audit.NewRecorder([]audit.Sink{store}, append(mode.opts, audit.WithQueueSize(1<<20))...)
			if err != nil {
				b.Fatal(err)
			}
			var waited atomic.Int64
			var n atomic.Int64
			b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					t0 := time.Now()
					rec.Record(undecided(fmt.Sprint(i)))
					waited.Add(int64(time.Since(t0)))
				}
			})
			if err := rec.Close(); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(n.Load())/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(waited.Load())/float64(n.Load())/1e3, "µs/admission")
		})
	}
}
