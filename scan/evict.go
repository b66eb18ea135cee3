package scan

// shrink evicts records past the index's limits, least recently looked up
// first (CLOCK: a record looked up since the hand last passed it gets a
// second chance). Strings of evicted and replaced records stay in the
// string table until it is compacted: when over the limits and an eighth of
// the byte limit was interned since the last compaction (so compactions,
// O(records) each, are paid for by as many bytes of new strings), or when
// no record is left to evict. Called with x.mu held.
func (x *Index) shrink() {
	for x.over() {
		if x.strBytes-x.strFloor > x.lim.Bytes/8 {
			x.compact()
			continue
		}
		if !x.evictOne() {
			if x.strBytes > x.strFloor {
				x.compact()
				continue
			}
			break
		}
	}
	// Dead records leave the CLOCK once they are most of it.
	if len(x.hand) > 64 && len(x.hand) > 2*(len(x.byDigest)+len(x.byKey)) {
		x.sweep()
	}
}

func (x *Index) over() bool {
	return len(x.byDigest)+len(x.byKey) > x.lim.Entries || x.recBytes+x.strBytes > x.lim.Bytes
}

// evictOne evicts one record; false when there is none left to evict.
func (x *Index) evictOne() bool {
	// Two passes at most: the first may only clear used bits.
	for range 2*len(x.hand) + 1 {
		if len(x.hand) == 0 {
			return false
		}
		if x.handPos >= len(x.hand) {
			x.handPos = 0
		}
		r := x.hand[x.handPos]
		if r.dead {
			x.hand[x.handPos] = x.hand[len(x.hand)-1]
			x.hand = x.hand[:len(x.hand)-1]
			continue
		}
		if r.used.Swap(false) {
			x.handPos++
			continue
		}
		if r.key != "" {
			delete(x.byKey, r.key)
		} else {
			delete(x.byDigest, r.digest)
		}
		x.drop(r)
		x.hand[x.handPos] = x.hand[len(x.hand)-1]
		x.hand = x.hand[:len(x.hand)-1]
		x.evicted.Add(1)
		return true
	}
	return false
}

// sweep removes dead records from the CLOCK.
func (x *Index) sweep() {
	live := x.hand[:0]
	for _, r := range x.hand {
		if !r.dead {
			live = append(live, r)
		}
	}
	clear(x.hand[len(live):])
	x.hand = live
	x.handPos = 0
}

// compact rebuilds the string table from what live records and marks use:
// strings of evicted and replaced records are otherwise kept for good.
func (x *Index) compact() {
	x.sweep()
	old := x.strs
	x.strs, x.ids, x.strBytes = []string{""}, map[string]uint32{"": 0}, stringCost("")
	for _, r := range x.hand {
		r.source = x.intern(old[r.source])
		for i, f := range r.findings {
			category, level, class, id, name := unpack(f)
			r.findings[i] = pack(category, level, class, x.intern(old[id]), x.intern(old[name]))
		}
	}
	for d, id := range x.malicious {
		x.malicious[d] = x.intern(old[id])
	}
	x.strFloor = x.strBytes
}

// roomForStrings makes sure n more strings get an id that fits a packed
// finding, compacting and, should live strings alone fill the ids,
// evicting records.
func (x *Index) roomForStrings(n int) {
	for len(x.strs)+n >= 1<<idBits {
		x.compact()
		if len(x.strs)+n < 1<<idBits {
			return
		}
		evicted := false
		for range max(1, len(x.hand)/4) {
			if !x.evictOne() {
				break
			}
			evicted = true
		}
		if !evicted {
			return // nothing left to evict: marks' reasons alone (never seen in practice)
		}
	}
}
