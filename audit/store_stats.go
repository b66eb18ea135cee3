package audit

import (
	"bytes"
	"encoding/binary"
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

func appendStatKey(k []byte, c Cell) []byte {
	k = binary.BigEndian.AppendUint64(k, uint64(c.Hour.Unix()))
	k = append(k, c.Dim...)
	k = append(k, 0)
	k = append(k, c.Value...)
	k = append(k, 0)
	return append(k, c.Action...)
}

func parseStatKeyIn(k []byte, dims map[string]bool, intern map[string]string) (Cell, bool) {
	if len(k) < 8 {
		return Cell{}, false
	}
	rest := k[8:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 || (dims != nil && !dims[string(rest[:i])]) {
		return Cell{}, false
	}
	j := bytes.IndexByte(rest[i+1:], 0)
	if j < 0 {
		return Cell{}, false
	}
	str := func(b []byte) string {
		if s, ok := intern[string(b)]; ok {
			return s
		}
		s := string(b)
		if intern != nil {
			intern[s] = s
		}
		return s
	}
	return Cell{Hour: time.Unix(int64(binary.BigEndian.Uint64(k[:8])), 0).UTC(),
		Dim: str(rest[:i]), Value: str(rest[i+1 : i+1+j]), Action: str(rest[i+2+j:])}, true
}

// addStats adds delta to the counters of events; a counter that reaches
// zero is deleted (and never goes below it).
func addStats(tx *bolt.Tx, events []*Event, delta int64) error {
	// Pointers, so that a key already summed is found without making a
	// string of the buffer (only new keys allocate).
	sums := map[string]*int64{}
	var buf []byte
	for _, ev := range events {
		eachStatCell(ev, func(c Cell) {
			buf = appendStatKey(buf[:0], c)
			if p, ok := sums[string(buf)]; ok {
				*p += delta
				return
			}
			d := delta
			sums[string(buf)] = &d
		})
	}
	if len(sums) == 0 {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(bucketStats)
	if err != nil {
		return err
	}
	for k, dp := range sums {
		d := *dp
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
	sb := NewStatsBuilder(q)
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
		intern := map[string]string{}
		for k, v := c.Seek(lo); k != nil && bytes.Compare(k[:min(8, len(k))], hi) < 0 && n < maxStatsKeys; k, v = c.Next() {
			n++
			cell, ok := parseStatKeyIn(k, dims, intern)
			if !ok || len(v) != 8 {
				continue
			}
			cell.Count = int64(binary.BigEndian.Uint64(v))
			sb.Add(cell)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sb.Stats(), nil
}
