package scan

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/workload"
)

// Index answers scan lookups from memory. Records are held compactly (a
// sha256 digest as 32 bytes, interned strings, a finding packed in 8 bytes)
// and bounded in entries and bytes (IndexLimits): past either bound the
// least recently looked-up records are evicted. Malicious marks are never
// evicted — a deny-list with holes would turn denials into allows — and an
// evicted scan is not forgotten either: once anything was evicted, a miss is
// read from the store (Find), and when the store cannot answer the lookup
// fails, so the admission fails closed instead of seeing the image as
// unscanned.
type Index struct {
	mu       sync.RWMutex
	lim      IndexLimits
	strs     []string
	ids      map[string]uint32
	strBytes int64
	// strFloor is strBytes after the last compaction: compacting again
	// before the strings doubled would cost O(records) per insert.
	strFloor int64

	byDigest  map[[32]byte]*record // "d:sha256:…" keys
	byKey     map[string]*record   // every other key ("r:<ref>", other digests)
	malicious map[[32]byte]uint32  // sha256 digest → interned reason
	malOther  map[string]string    // marks of digests not sha256
	recBytes  int64                // what the records cost, by recordCost
	hand      []*record            // the CLOCK: records in insertion order
	handPos   int

	evicted atomic.Int64 // records evicted so far: the index is partial
	version uint64       // bumped by every change from the store
	absent  map[string]struct{}
	backing Getter

	// hot holds the expanded facts of recently looked-up scans: admissions
	// ask about the same images again and again.
	hotMu    sync.Mutex
	hot      map[*record]*facts.Scan
	hotBytes int64
}

// Getter reads one key of the store, for records the index evicted:
// the scan stored under key ("d:<digest>" or "r:<repository:tag>"), nil
// when there is none.
type Getter interface {
	Get(ctx context.Context, key string) (*facts.Scan, error)
}

// IndexLimits bound an Index. Malicious marks are held in full whatever
// the limits (about 60 bytes each).
type IndexLimits struct {
	// Entries bounds the scan records held (a record stored under a digest
	// and a tag counts twice).
	Entries int
	// Bytes bounds the records' memory and their interned strings, as
	// recordCost and stringCost count it.
	Bytes int64
}

// Defaults of an Index, in one place: 100,000 images of 30 findings take
// about 39 MB by these counts (and of heap), so the defaults hold 170,000
// such images without eviction.
const (
	DefaultIndexEntries = 500_000
	DefaultIndexBytes   = 64 << 20
	// hotEntries and hotBytes bound the expanded scans kept; eviction is
	// random, which is cheap and good enough for a working set that fits.
	hotEntries  = 4096
	hotMaxBytes = 16 << 20
	// absentEntries bounds the keys known to be missing from the store
	// while the index is partial (cleared by every change).
	absentEntries = 4096
)

// ErrScanUnavailable is why a lookup failed: the record may have been
// evicted and the store could not be read.
var ErrScanUnavailable = errors.New("scan facts unavailable")

type record struct {
	at        int64 // unix nanoseconds; 0 when unknown
	findings  []uint64
	source    uint32
	malicious bool
	dead      bool        // evicted or replaced: the CLOCK skips it
	used      atomic.Bool // looked up since the CLOCK last passed
	key       string      // its byKey key; "" for byDigest
	digest    [32]byte
}

// recordCost is what a record costs: the struct, its findings and its
// share of a map entry.
func recordCost(findings int) int64 { return 144 + 8*int64(findings) }

func stringCost(s string) int64 { return 32 + int64(len(s)) }

// A finding is packed into 8 bytes: id and name (interned, 24 bits each),
// category, level and class codes.
const idBits = 24

func pack(category, level, class uint8, id, name uint32) uint64 {
	return uint64(id) | uint64(name)<<idBits | uint64(category)<<48 | uint64(level)<<56 | uint64(class)<<60
}

func unpack(f uint64) (category, level, class uint8, id, name uint32) {
	return uint8(f >> 48), uint8(f>>56) & 0xf, uint8(f >> 60), uint32(f) & (1<<idBits - 1), uint32(f>>idBits) & (1<<idBits - 1)
}

var (
	categoryCodes = codes(facts.Categories...)
	levelCodes    = codes("high", "medium", "low")
	classCodes    = codes("", "cve", "app")
)

type codeTable struct {
	names []string
	codes map[string]uint8
}

func codes(names ...string) codeTable {
	t := codeTable{names: names, codes: map[string]uint8{}}
	for i, n := range names {
		t.codes[n] = uint8(i)
	}
	return t
}

// NewIndex returns an empty index with the default limits.
func NewIndex() *Index { return newIndex(IndexLimits{}, nil) }

func newIndex(lim IndexLimits, backing Getter) *Index {
	if lim.Entries <= 0 {
		lim.Entries = DefaultIndexEntries
	}
	if lim.Bytes <= 0 {
		lim.Bytes = DefaultIndexBytes
	}
	return &Index{lim: lim, ids: map[string]uint32{"": 0}, strs: []string{""}, strBytes: stringCost(""),
		byDigest: map[[32]byte]*record{}, byKey: map[string]*record{}, malicious: map[[32]byte]uint32{},
		malOther: map[string]string{}, absent: map[string]struct{}{}, backing: backing, hot: map[*record]*facts.Scan{}}
}

// sha256Key is the 32 bytes of a "sha256:<lowercase hex>" digest (without
// allocating: lookups call it).
func sha256Key(digest string) ([32]byte, bool) {
	var k [32]byte
	if len(digest) != 71 || digest[:7] != "sha256:" {
		return k, false
	}
	for i := range k {
		hi, ok1 := fromHex(digest[7+2*i])
		lo, ok2 := fromHex(digest[8+2*i])
		if !ok1 || !ok2 {
			return k, false
		}
		k[i] = hi<<4 | lo
	}
	return k, true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func (x *Index) intern(s string) uint32 {
	if id, ok := x.ids[s]; ok {
		return id
	}
	id := uint32(len(x.strs))
	x.strs = append(x.strs, s)
	x.ids[s] = id
	x.strBytes += stringCost(s)
	return id
}

// set stores a scan under key, replacing what was there, and evicts past
// the limits.
func (x *Index) set(key string, s *facts.Scan) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.version++
	clear(x.absent)
	x.put(key, s)
}

func (x *Index) put(key string, s *facts.Scan) *record {
	x.roomForStrings(2*len(s.Findings) + 1)
	r := &record{malicious: s.Malicious, source: x.intern(s.Source), findings: make([]uint64, len(s.Findings))}
	if !s.ScannedAt.IsZero() {
		r.at = s.ScannedAt.UnixNano()
	}
	for i, f := range s.Findings {
		r.findings[i] = pack(categoryCodes.codes[f.Category], levelCodes.codes[f.Level], classCodes.codes[f.Class],
			x.intern(f.ID), x.intern(f.Name))
	}
	if d, ok := sha256Key(key[min(2, len(key)):]); ok && key[:2] == "d:" {
		r.digest = d
		x.drop(x.byDigest[d])
		x.byDigest[d] = r
	} else {
		r.key = key
		x.drop(x.byKey[key])
		x.byKey[key] = r
	}
	x.recBytes += recordCost(len(r.findings))
	x.hand = append(x.hand, r)
	x.shrink()
	return r
}

// drop accounts for a record leaving the index (replaced or evicted).
func (x *Index) drop(r *record) {
	if r == nil {
		return
	}
	r.dead = true
	x.recBytes -= recordCost(len(r.findings))
	x.hotMu.Lock()
	if s, ok := x.hot[r]; ok {
		x.hotBytes -= expandedCost(s)
		delete(x.hot, r)
	}
	x.hotMu.Unlock()
}

func (x *Index) setMalicious(digest, reason string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.version++
	if d, ok := sha256Key(digest); ok {
		x.malicious[d] = x.intern(reason)
	} else {
		x.malOther[digest] = reason
	}
}

func (x *Index) clearMalicious(digest string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.version++
	if d, ok := sha256Key(digest); ok {
		delete(x.malicious, d)
	} else {
		delete(x.malOther, digest)
	}
}

// Len is the number of scan records held (a record under a digest and a
// tag counts twice).
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byDigest) + len(x.byKey)
}

// Evicted is the number of records evicted so far.
func (x *Index) Evicted() int64 { return x.evicted.Load() }

// Bytes is what the held records and their strings cost, as the byte limit
// counts it.
func (x *Index) Bytes() int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.recBytes + x.strBytes
}

func (x *Index) get(key string) *record {
	if d, ok := sha256Key(key[min(2, len(key)):]); ok && key[:2] == "d:" {
		return x.byDigest[d]
	}
	return x.byKey[key]
}

func (x *Index) reason(digest string) string {
	if d, ok := sha256Key(digest); ok {
		if id, ok := x.malicious[d]; ok {
			return x.strs[id]
		}
		return ""
	}
	return x.malOther[digest]
}

// Lookup returns the scan of an image (by its digest, the digest it
// resolved to, else its tag) held in memory and, for a known-malicious
// digest, the reason. It does not read the store: admissions use Find.
func (x *Index) Lookup(img workload.Image, digest string) (*facts.Scan, string) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var scan *facts.Scan
	for _, k := range keyFor(img, digest) {
		if r := x.get(k); r != nil {
			r.touch()
			scan = x.expanded(r)
			break
		}
	}
	d := img.Digest
	if d == "" {
		d = digest
	}
	return scan, x.reason(d)
}

// Find is Lookup that, once records were evicted, reads a miss from the
// store (keeping what it read). An error (ErrScanUnavailable) means the
// image's scan cannot be known: the caller must not take it for unscanned.
func (x *Index) Find(ctx context.Context, img workload.Image, digest string) (*facts.Scan, string, error) {
	scan, reason := x.Lookup(img, digest)
	// Read after the lookup: an eviction before it shows here (evictions
	// happen under the write lock), so a complete index is never mistaken.
	if x.evicted.Load() == 0 {
		return scan, reason, nil
	}
	// Key by key, in memory then in the store: a tag held in memory must not
	// answer for a digest that was evicted.
	for _, k := range keyFor(img, digest) {
		s, err := x.load(ctx, k)
		if s != nil || err != nil {
			return s, reason, err
		}
	}
	return nil, reason, nil
}

// load reads key from the store into the index; nil when the store holds
// nothing under it.
func (x *Index) load(ctx context.Context, key string) (*facts.Scan, error) {
	x.mu.RLock()
	version := x.version
	r := x.get(key)
	_, absent := x.absent[key]
	x.mu.RUnlock()
	if r != nil {
		return x.expandedLocked(r), nil
	}
	if absent {
		return nil, nil
	}
	if x.backing == nil {
		return nil, fmt.Errorf("%w: the scan of %s may have been evicted and the store cannot be read by key", ErrScanUnavailable, key[2:])
	}
	s, err := x.backing.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrScanUnavailable, key[2:], err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.version != version {
		return s, nil // the store changed meanwhile: the next refresh brings it
	}
	if s == nil {
		if len(x.absent) >= absentEntries {
			clear(x.absent)
		}
		x.absent[key] = struct{}{}
		return nil, nil
	}
	r = x.put(key, s)
	r.used.Store(true)
	return s, nil
}

func (x *Index) expandedLocked(r *record) *facts.Scan {
	x.mu.RLock()
	defer x.mu.RUnlock()
	r.touch()
	return x.expanded(r)
}

// touch gives r a second chance at the CLOCK's next pass (read first: most
// lookups find the bit set and write nothing).
func (r *record) touch() {
	if !r.used.Load() {
		r.used.Store(true)
	}
}

// expanded returns the facts of r, shared and read-only.
func (x *Index) expanded(r *record) *facts.Scan {
	x.hotMu.Lock()
	defer x.hotMu.Unlock()
	if s, ok := x.hot[r]; ok {
		return s
	}
	s := x.expand(r)
	for k, old := range x.hot {
		if len(x.hot) < hotEntries && x.hotBytes+expandedCost(s) <= hotMaxBytes {
			break
		}
		x.hotBytes -= expandedCost(old)
		delete(x.hot, k)
	}
	if !r.dead {
		x.hot[r] = s
		x.hotBytes += expandedCost(s)
	}
	return s
}

// expandedCost is what an expanded scan costs beyond the interned strings
// it shares with the index.
func expandedCost(s *facts.Scan) int64 { return 96 + 80*int64(len(s.Findings)) }

func (x *Index) expand(r *record) *facts.Scan {
	s := &facts.Scan{Malicious: r.malicious, Source: x.strs[r.source], Findings: make([]facts.Finding, len(r.findings))}
	if r.at != 0 {
		s.ScannedAt = unixNano(r.at)
	}
	for i, f := range r.findings {
		category, level, class, id, name := unpack(f)
		s.Findings[i] = facts.Finding{Category: categoryCodes.names[category], Level: levelCodes.names[level],
			Class: classCodes.names[class], ID: x.strs[id], Name: x.strs[name]}
	}
	return s
}
