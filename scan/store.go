package scan

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

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

// Import writes records and malicious digests in one transaction: a report
// is imported whole or not at all. Under each key (the image's digest, and
// its tag) the newest scan by its own time is kept: a record whose digest
// (or, naming none, whose tag) holds a newer scan, or a different one from
// the same time, is skipped — or, with RefuseStale, refused with a
// *StaleError and nothing is written. Re-importing the stored scan changes
// nothing. A tag holding a newer scan (of another image the tag named) keeps
// it. Malicious digests are only ever added here; ClearMalicious removes
// one.
func Import(path string, records []*Record, malicious map[string]string, opts ...ImportOption) error {
	var o importOptions
	for _, fn := range opts {
		fn(&o)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("scan store %s: %w", path, err)
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
func ClearMalicious(path, digest string) (bool, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return false, fmt.Errorf("scan store %s: %w", path, err)
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

// load reads into idx every write logged after seq, and returns the last
// sequence seen.
func load(path string, idx *Index, seq uint64) (uint64, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	if err != nil {
		return seq, fmt.Errorf("scan store %s: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		log, scans, mal := tx.Bucket(bucketLog), tx.Bucket(bucketScans), tx.Bucket(bucketMalicious)
		if log == nil {
			return nil
		}
		c := log.Cursor()
		for k, v := c.Seek(seqKey(seq + 1)); k != nil; k, v = c.Next() {
			seq = binary.BigEndian.Uint64(k)
			key := string(v)
			if len(key) > 2 && key[:2] == "m:" {
				if reason := mal.Get([]byte(key[2:])); reason != nil {
					idx.setMalicious(key[2:], string(reason))
				} else {
					idx.clearMalicious(key[2:]) // cleared explicitly
				}
				continue
			}
			b := scans.Get([]byte(key))
			if b == nil {
				continue
			}
			var r Record
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("scan store %s: record %s: %w", path, key, err)
			}
			idx.set(key, &r.Scan)
		}
		return nil
	})
	return seq, err
}

// Reader keeps an Index in step with a store file that other processes
// (imagegate scan import, the scans endpoint) write to.
type Reader struct {
	path string
	idx  *Index
	seq  uint64
	mod  time.Time
	size int64
}

// OpenReader loads the store at path; a missing file is an empty store.
func OpenReader(path string) (*Reader, error) {
	r := &Reader{path: path, idx: NewIndex()}
	if _, err := r.Refresh(); err != nil {
		return nil, err
	}
	return r, nil
}

// Index is the reader's index, updated in place by Refresh.
func (r *Reader) Index() *Index { return r.idx }

// Refresh loads what was written since the last refresh, if the file changed.
func (r *Reader) Refresh() (bool, error) {
	info, err := os.Stat(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if info.ModTime().Equal(r.mod) && info.Size() == r.size {
		return false, nil
	}
	seq, err := load(r.path, r.idx, r.seq)
	if err != nil {
		return false, err
	}
	r.mod, r.size = info.ModTime(), info.Size()
	changed := seq != r.seq
	r.seq = seq
	return changed, nil
}

// Watch refreshes every interval until ctx ends, reporting errors.
func (r *Reader) Watch(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := r.Refresh(); err != nil && onError != nil {
				onError(err)
			}
		}
	}
}
