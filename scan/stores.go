package scan

import (
	"context"

	"github.com/imagegate/imagegate/facts"
)

// Store keeps scan facts for every replica to see: the bbolt file (File) for
// one process, or a database shared by several (package pgstore). Both keep
// the same rules: per image the newest scan by its own time wins (an older
// or different same-time one is a *StaleError with RefuseStale, skipped
// without), a report is imported whole or not at all, and a malicious mark
// goes away only through ClearMalicious.
type Store interface {
	Import(ctx context.Context, records []*Record, malicious map[string]string, opts ...ImportOption) error
	ClearMalicious(ctx context.Context, digest string) (found bool, err error)
}

// ChangeLog is what a Reader follows: every write in order, numbered.
type ChangeLog interface {
	// Changes returns at most limit writes numbered after `after`, in
	// order, and the number of the last one (after itself when none).
	Changes(ctx context.Context, after uint64, limit int) ([]Change, uint64, error)
}

// Notifier is a ChangeLog that can tell when something was written (the
// database's notifications), so readers need not wait for their next poll.
// The channel may also fire with nothing new.
type Notifier interface {
	Notify() <-chan struct{}
}

// Change is one write: a scan stored under Key ("d:<digest>" or
// "r:<repository:tag>"), or a malicious mark set or cleared (Key
// "m:<digest>").
type Change struct {
	Key     string
	Scan    *facts.Scan // the scan stored under a d: or r: key
	Reason  string      // why an m: digest is malicious
	Cleared bool        // the m: digest's mark was cleared
}

// ImportSettings are the ImportOptions in effect, for Store implementations
// outside this package.
type ImportSettings struct{ RefuseStale bool }

// Settings applies opts.
func Settings(opts ...ImportOption) ImportSettings {
	var o importOptions
	for _, fn := range opts {
		fn(&o)
	}
	return ImportSettings{RefuseStale: o.refuseStale}
}

// KeysOf are the keys a record is stored under, in the order Import checks
// them: its digest, then its tag.
func KeysOf(r *Record) ([]string, error) { return r.keys() }

// apply brings one change into the index.
func (x *Index) apply(c Change) {
	switch {
	case len(c.Key) > 2 && c.Key[:2] == "m:" && c.Cleared:
		x.clearMalicious(c.Key[2:])
	case len(c.Key) > 2 && c.Key[:2] == "m:":
		x.setMalicious(c.Key[2:], c.Reason)
	case c.Scan != nil:
		x.set(c.Key, c.Scan)
	}
}
