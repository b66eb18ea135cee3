package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DefaultRetention is how long the store keeps events (--audit-retention).
const DefaultRetention = 180 * 24 * time.Hour

// pruneBatch bounds one pruning transaction, so writers wait briefly.
const pruneBatch = 5000

// Prune deletes the events older than before, with their index entries, in
// transactions of a few thousand events; it returns how many went.
func (s *Store) Prune(before time.Time) (int, error) {
	cutoff := make([]byte, 16)
	binary.BigEndian.PutUint64(cutoff[:8], uint64(max(before.UnixNano(), 0)))
	total := 0
	for {
		n := 0
		err := s.with(false, func(tx *bolt.Tx) error {
			evs, ix := tx.Bucket(bucketEvents), tx.Bucket(bucketIndex)
			if evs == nil || ix == nil {
				return nil
			}
			var ids [][]byte
			var pruned []*Event
			emptied := map[string]bool{}
			c := evs.Cursor()
			for k, v := c.First(); k != nil && bytes.Compare(k, cutoff) < 0 && len(ids) < pruneBatch; k, v = c.Next() {
				id := append([]byte(nil), k...)
				ids = append(ids, id)
				var ev Event
				if json.Unmarshal(v, &ev) != nil {
					continue // the event goes; index entries of an unreadable one stay until their bucket empties
				}
				pruned = append(pruned, &ev)
				for _, name := range indexNames(&ev) {
					if b := ix.Bucket([]byte(name)); b != nil {
						if err := b.Delete(id); err != nil {
							return err
						}
						emptied[name] = true
					}
				}
			}
			for _, id := range ids {
				if err := evs.Delete(id); err != nil {
					return err
				}
			}
			if err := addStats(tx, pruned, -1); err != nil {
				return err
			}
			for name := range emptied {
				if b := ix.Bucket([]byte(name)); b != nil {
					if k, _ := b.Cursor().First(); k == nil {
						if err := ix.DeleteBucket([]byte(name)); err != nil {
							return err
						}
					}
				}
			}
			n = len(ids)
			return nil
		})
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}

// RunRetention prunes events older than retention now and then every
// interval until ctx ends.
func (s *Store) RunRetention(ctx context.Context, retention, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.Prune(time.Now().Add(-retention))
		switch {
		case err != nil:
			log.Warn("audit store not pruned", "error", err.Error())
		case n > 0:
			log.Info("audit store pruned", "events", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
