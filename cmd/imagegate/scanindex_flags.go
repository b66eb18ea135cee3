package main

import (
	"flag"
	"fmt"
	"runtime/debug"

	"github.com/imagegate/imagegate/scan"
)

// scanIndexFlags bound the in-memory index of the scan store.
type scanIndexFlags struct {
	entries int
	bytes   int64
}

func (s *scanIndexFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&s.entries, "scan-index-entries", scan.DefaultIndexEntries, "scan records held in memory (past it the least recently used are evicted and read back from --scan-store when asked for)")
	fs.Int64Var(&s.bytes, "scan-index-bytes", scan.DefaultIndexBytes, "bytes of scan records held in memory (past it the least recently used are evicted and read back from --scan-store when asked for)")
}

// readerOptions bound the index; the bytes limit is capped where packed
// findings' string ids would run out.
func (s *scanIndexFlags) readerOptions() ([]scan.ReaderOption, error) {
	if s.entries < 1 || s.bytes < 1<<20 || s.bytes > 1<<30 {
		return nil, fmt.Errorf("--scan-index-entries must be at least 1 and --scan-index-bytes between 1 MiB and 1 GiB, got %d and %d", s.entries, s.bytes)
	}
	return []scan.ReaderOption{scan.WithIndexLimits(scan.IndexLimits{Entries: s.entries, Bytes: s.bytes})}, nil
}

// loading collects garbage at least as often as GOGC=100 while the store is
// loaded (the decoded records are garbage as soon as they are indexed: a
// GOGC of 400 would let them pile up to five times the index), and the
// returned func restores the setting and returns what the load used and
// dropped to the system, which the heap limit would otherwise keep
// resident until the scavenger gets to it.
func (s *scanIndexFlags) loading() (loaded func()) {
	old := debug.SetGCPercent(100)
	if old >= 0 && old < 100 {
		debug.SetGCPercent(old)
	}
	return func() {
		debug.SetGCPercent(old)
		debug.FreeOSMemory()
	}
}
