package audit

import (
	"bytes"
	"encoding/binary"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The store keeps event counts per hour beside the events, so that the
// console's overview reads a few thousand counters rather than every
// event of the window:
//
//	stats   HOUR(8 bytes, unix seconds) DIM \x00 VALUE \x00 ACTION → count (8 bytes)
//
// Write adds to them and Prune takes the pruned events off again. A store
// written before there were counters counts only the events written since.
var bucketStats = []byte("stats")

// maxStatsKeys bounds the counters one Stats call reads.
const maxStatsKeys = 4 << 20

func statKey(c Cell) []byte {
	k := make([]byte, 8, 8+len(c.Dim)+len(c.Value)+len(c.Action)+2)
	binary.BigEndian.PutUint64(k, uint64(c.Hour.Unix()))
	k = append(k, c.Dim...)
	k = append(k, 0)
	k = append(k, c.Value...)
	k = append(k, 0)
	return append(k, c.Action...)
}

func parseStatKey(k []byte) (Cell, bool) {
	if len(k) < 8 {
		return Cell{}, false
	}
	parts := strings.SplitN(string(k[8:]), "\x00", 3)
	if len(parts) != 3 {
		return Cell{}, false
	}
	return Cell{Hour: time.Unix(int64(binary.BigEndian.Uint64(k[:8])), 0).UTC(), Dim: parts[0], Value: parts[1], Action: parts[2]}, true
}

// addStats adds delta to the counters of events; a counter that reaches
// zero is deleted (and never goes below it).
func addStats(tx *bolt.Tx, events []*Event, delta int64) error {
	sums := map[string]int64{}
	for _, ev := range events {
		for _, c := range statCells(ev) {
			sums[string(statKey(c))] += delta
		}
	}
	if len(sums) == 0 {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(bucketStats)
	if err != nil {
		return err
	}
	for k, d := range sums {
		var n int64
		if v := b.Get([]byte(k)); len(v) == 8 {
			n = int64(binary.BigEndian.Uint64(v))
		}
		n = max(n+d, 0)
		if n == 0 {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
			continue
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, uint64(n))
		if err := b.Put([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

// Stats answers q from the hourly counters.
func (s *Store) Stats(q StatsQuery) (*Stats, error) {
	if err := q.Normalize(time.Now()); err != nil {
		return nil, err
	}
	dims := map[string]bool{}
	for _, d := range q.Dims() {
		dims[d] = true
	}
	var cells []Cell
	err := s.with(true, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStats)
		if b == nil {
			return nil
		}
		lo, hi := make([]byte, 8), make([]byte, 8)
		binary.BigEndian.PutUint64(lo, uint64(q.Since.Unix()))
		binary.BigEndian.PutUint64(hi, uint64(q.Until.Unix()))
		c := b.Cursor()
		n := 0
		for k, v := c.Seek(lo); k != nil && bytes.Compare(k[:min(8, len(k))], hi) < 0 && n < maxStatsKeys; k, v = c.Next() {
			n++
			cell, ok := parseStatKey(k)
			if !ok || !dims[cell.Dim] || len(v) != 8 {
				continue
			}
			cell.Count = int64(binary.BigEndian.Uint64(v))
			cells = append(cells, cell)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return BuildStats(q, cells), nil
}
