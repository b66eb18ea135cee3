package memory

import (
	"flag"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/imagegate/imagegate/scan"
)

var heapProfile = flag.String("heapprofile", "", "BenchmarkLoadScanStore: write the heap profile with the index loaded here")

// BenchmarkLoadScanStore loads the scan store -store (written by
// BenchmarkWriteScanStore) into a scan index as imagegate serve does, and
// reports the heap the index retains, the peak RSS of the load and its
// time; -heapprofile writes the heap profile with the index held, for
// `go tool pprof -sample_index=inuse_space`.
func BenchmarkLoadScanStore(b *testing.B) {
	if *store == "" {
		b.Skip("no -store")
	}
	for range b.N {
		before := liveHeap()
		start := time.Now()
		r, err := scan.OpenReader(*store)
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		held := liveHeap()
		if *heapProfile != "" {
			f, err := os.Create(*heapProfile)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.WriteHeapProfile(f); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		b.ReportMetric(mb(held-before), "scan-index-heap-MB")
		b.ReportMetric(peakRSS(), "peak-RSS-MB")
		b.ReportMetric(float64(r.Index().Len()), "records")
		b.Logf("loaded in %s", took.Round(time.Millisecond))
		runtime.KeepAlive(r)
	}
}
