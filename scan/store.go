package scan

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/imagegate/imagegate/facts"
	bolt "go.etcd.io/bbolt"
)

// The store is a bbolt file (pure Go, one file, crash-safe, transactions; see
// docs/scans.md): bucket "scans" maps keys ("d:<digest>" or "r:<ref>") to
// JSON Records; "malicious" maps digests to reasons; "log" maps a sequence
// number to the key each write touched, so readers load only what changed.
var (
	bucketScans     = []byte("scans")
	bucketMalicious = []byte("malicious")
	bucketLog       = []byte("log")
)

// lockTimeout bounds waiting for another process's transaction.
const lockTimeout = 10 * time.Second

// ImportOption configures Import.
type ImportOption func(*importOptions)

type importOptions struct{ refuseStale bool }

// RefuseStale makes a record older than the scan stored for its image an
// error (*StaleError) that writes nothing, instead of a record skipped.
func RefuseStale() ImportOption { return func(o *importOptions) { o.refuseStale = true } }

// StaleError refuses a scan that is not newer than the one stored for the
// same image: scans are kept newest first by their own time, so an old
// (or backdated) report cannot roll back a newer one.
type StaleError struct {
	Image   string    // the digest (or repository:tag) the scan is stored under
	Stored  time.Time // the stored scan's time
	Offered time.Time // the refused scan's time
}

func (e *StaleError) Error() string {
	if e.Offered.Equal(e.Stored) {
		return fmt.Sprintf("image %s: another scan from the same time (%s) is stored; only a newer scan replaces it",
			e.Image, e.Stored.Format(time.RFC3339Nano))
	}
	return fmt.Sprintf("image %s: the stored scan is from %s, this one from %s; only a newer scan replaces it",
		e.Image, e.Stored.Format(time.RFC3339Nano), e.Offered.Format(time.RFC3339Nano))
}

// File is the scan store in a bbolt file at a path, opened for each
// operation so that imagegate scan import and serve can share it.
type File struct {
	path string
	// mod and size are the file's when Changes last read it to the end,
	// up to seen: a follower that has seen that far is not sent to open an
	// unchanged file again.
	mu   sync.Mutex
	mod  time.Time
	size int64
	seen uint64
}

var (
	_ Store     = (*File)(nil)
	_ ChangeLog = (*File)(nil)
)

// NewFile is the store at path; a missing file is an empty store.
func NewFile(path string) *File { return &File{path: path} }

// Import writes into the store file at path (File.Import).
func Import(path string, records []*Record, malicious map[string]string, opts ...ImportOption) error {
	return NewFile(path).Import(context.Background(), records, malicious, opts...)
}

// ClearMalicious clears a mark in the store file at path (File.ClearMalicious).
func ClearMalicious(path, digest string) (bool, error) {
	return NewFile(path).ClearMalicious(context.Background(), digest)
}

// Import writes records and malicious digests in one transaction: a report
// is imported whole or not at all. Under each key (the image's digest, and
// its tag) the newest scan by its own time is kept: a record whose digest
// (or, naming none, whose tag) holds a newer scan, or a different one from
// the same time, is skipped — or, with RefuseStale, refused with a
// *StaleError and nothing is written. Re-importing the stored scan changes
// nothing. A tag holding a newer scan (of another image the tag named) keeps
// it. Malicious digests are only ever added here; ClearMalicious removes
// one.
func (f *File) Import(_ context.Context, records []*Record, malicious map[string]string, opts ...ImportOption) error {
	var o importOptions
	for _, fn := range opts {
		fn(&o)
	}
	db, err := bolt.Open(f.path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("scan store %s: %w", f.path, err)
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		scans, err1 := tx.CreateBucketIfNotExists(bucketScans)
		mal, err2 := tx.CreateBucketIfNotExists(bucketMalicious)
		log, err3 := tx.CreateBucketIfNotExists(bucketLog)
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		note := func(key string) error {
			seq, err := log.NextSequence()
			if err != nil {
				return err
			}
			return log.Put(seqKey(seq), []byte(key))
		}
		for _, r := range records {
			keys, err := r.keys()
			if err != nil {
				return err
			}
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			for i, key := range keys {
				stale, same, err := staleAt(scans, key, r, b)
				if err != nil {
					return err
				}
				if same {
					continue
				}
				if stale != nil {
					if i > 0 {
						continue // the tag moved on to a newer scan
					}
					if o.refuseStale {
						return stale
					}
					break // skip the record
				}
				if err := scans.Put([]byte(key), b); err != nil {
					return err
				}
				if err := note(key); err != nil {
					return err
				}
			}
		}
		for d, reason := range malicious {
			if err := mal.Put([]byte(d), []byte(reason)); err != nil {
				return err
			}
			if err := note("m:" + d); err != nil {
				return err
			}
		}
		return nil
	})
}

// staleAt compares r (marshalled as b) with the scan stored under key:
// stale when the stored one is newer, or from the same time and different;
// same when it is the very scan.
func staleAt(scans *bolt.Bucket, key string, r *Record, b []byte) (stale *StaleError, same bool, err error) {
	old := scans.Get([]byte(key))
	if old == nil {
		return nil, false, nil
	}
	if bytes.Equal(old, b) {
		return nil, true, nil
	}
	var stored Record
	if err := json.Unmarshal(old, &stored); err != nil {
		return nil, false, fmt.Errorf("stored record %s: %w", key, err)
	}
	if r.Scan.ScannedAt.After(stored.Scan.ScannedAt) {
		return nil, false, nil
	}
	return &StaleError{Image: key[2:], Stored: stored.Scan.ScannedAt, Offered: r.Scan.ScannedAt}, false, nil
}

// ClearMalicious removes the malicious mark of a digest (set by a feed);
// reports never clear one. It says whether the digest was marked.
func (f *File) ClearMalicious(_ context.Context, digest string) (bool, error) {
	db, err := bolt.Open(f.path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return false, fmt.Errorf("scan store %s: %w", f.path, err)
	}
	defer db.Close()
	found := false
	err = db.Update(func(tx *bolt.Tx) error {
		mal, log := tx.Bucket(bucketMalicious), tx.Bucket(bucketLog)
		if mal == nil || log == nil || mal.Get([]byte(digest)) == nil {
			return nil
		}
		found = true
		if err := mal.Delete([]byte(digest)); err != nil {
			return err
		}
		seq, err := log.NextSequence()
		if err != nil {
			return err
		}
		return log.Put(seqKey(seq), []byte("m:"+digest))
	})
	return found, err
}

func seqKey(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

// Changes reads the writes logged after seq, unless the file is as it was
// when Changes last read it to the end.
func (f *File) Changes(_ context.Context, after uint64, limit int) ([]Change, uint64, error) {
	info, err := os.Stat(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, after, nil
	}
	if err != nil {
		return nil, after, err
	}
	f.mu.Lock()
	unchanged := info.ModTime().Equal(f.mod) && info.Size() == f.size && after == f.seen
	f.mu.Unlock()
	if unchanged {
		return nil, after, nil
	}
	db, err := bolt.Open(f.path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	if err != nil {
		return nil, after, fmt.Errorf("scan store %s: %w", f.path, err)
	}
	defer db.Close()
	var out []Change
	seq := after
	err = db.View(func(tx *bolt.Tx) error {
		log, scans, mal := tx.Bucket(bucketLog), tx.Bucket(bucketScans), tx.Bucket(bucketMalicious)
		if log == nil {
			return nil
		}
		c := log.Cursor()
		for k, v := c.Seek(seqKey(seq + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			seq = binary.BigEndian.Uint64(k)
			key := string(v)
			if len(key) > 2 && key[:2] == "m:" {
				reason := mal.Get([]byte(key[2:]))
				out = append(out, Change{Key: key, Reason: string(reason), Cleared: reason == nil})
				continue
			}
			b := scans.Get([]byte(key))
			if b == nil {
				continue
			}
			var r Record
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("scan store %s: record %s: %w", f.path, key, err)
			}
			out = append(out, Change{Key: key, Scan: &r.Scan})
		}
		return nil
	})
	if err != nil {
		return nil, after, err
	}
	if len(out) < limit {
		f.mu.Lock()
		f.mod, f.size, f.seen = info.ModTime(), info.Size(), seq
		f.mu.Unlock()
	}
	return out, seq, nil
}

var _ Getter = (*File)(nil)

// Get reads the scan stored under key, for a record the index evicted; nil
// when there is none. A missing file is an error here, not an empty store:
// the index read records from it before.
func (f *File) Get(_ context.Context, key string) (*facts.Scan, error) {
	if _, err := os.Stat(f.path); err != nil {
		return nil, fmt.Errorf("scan store: %w", err)
	}
	db, err := bolt.Open(f.path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("scan store %s: %w", f.path, err)
	}
	defer db.Close()
	var out *facts.Scan
	err = db.View(func(tx *bolt.Tx) error {
		scans := tx.Bucket(bucketScans)
		if scans == nil {
			return nil
		}
		b := scans.Get([]byte(key))
		if b == nil {
			return nil
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("scan store %s: record %s: %w", f.path, key, err)
		}
		out = &r.Scan
		return nil
	})
	return out, err
}
