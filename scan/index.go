package scan

import (
	"sync"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/workload"
)

// Index answers scan lookups from memory. Findings are held compactly
// (interned strings, small codes) so that a store of 100,000 images fits in
// tens of megabytes; a lookup rebuilds the facts of one image.
type Index struct {
	mu        sync.RWMutex
	strs      []string
	ids       map[string]uint32
	scans     map[string]*compactScan
	malicious map[string]string

	// hot holds the expanded facts of recently looked-up scans: admissions
	// ask about the same images again and again.
	hotMu sync.Mutex
	hot   map[*compactScan]*facts.Scan
}

// hotSize bounds the expanded scans kept; eviction is random, which is cheap
// and good enough for a working set that fits.
const hotSize = 4096

type compactScan struct {
	at        int64 // unix nanoseconds; 0 when unknown
	malicious bool
	source    uint32
	findings  []compactFinding
}

type compactFinding struct {
	category, level, class uint8
	id, name               uint32
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

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{ids: map[string]uint32{"": 0}, strs: []string{""}, scans: map[string]*compactScan{}, malicious: map[string]string{},
		hot: map[*compactScan]*facts.Scan{}}
}

func (x *Index) intern(s string) uint32 {
	if id, ok := x.ids[s]; ok {
		return id
	}
	id := uint32(len(x.strs))
	x.strs = append(x.strs, s)
	x.ids[s] = id
	return id
}

func (x *Index) set(key string, s *facts.Scan) {
	x.mu.Lock()
	defer x.mu.Unlock()
	c := &compactScan{malicious: s.Malicious, source: x.intern(s.Source), findings: make([]compactFinding, len(s.Findings))}
	if !s.ScannedAt.IsZero() {
		c.at = s.ScannedAt.UnixNano()
	}
	for i, f := range s.Findings {
		c.findings[i] = compactFinding{category: categoryCodes.codes[f.Category], level: levelCodes.codes[f.Level],
			class: classCodes.codes[f.Class], id: x.intern(f.ID), name: x.intern(f.Name)}
	}
	x.scans[key] = c
}

func (x *Index) setMalicious(digest, reason string) {
	x.mu.Lock()
	x.malicious[digest] = reason
	x.mu.Unlock()
}

func (x *Index) clearMalicious(digest string) {
	x.mu.Lock()
	delete(x.malicious, digest)
	x.mu.Unlock()
}

// Len is the number of images with a scan.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.scans)
}

// Lookup returns the scan of an image (by its digest, the digest it
// resolved to, else its tag) and, for a known-malicious digest, the reason.
func (x *Index) Lookup(img workload.Image, digest string) (*facts.Scan, string) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var scan *facts.Scan
	for _, k := range keyFor(img, digest) {
		if c, ok := x.scans[k]; ok {
			scan = x.expanded(c)
			break
		}
	}
	d := img.Digest
	if d == "" {
		d = digest
	}
	return scan, x.malicious[d]
}

// expanded returns the facts of c, shared and read-only.
func (x *Index) expanded(c *compactScan) *facts.Scan {
	x.hotMu.Lock()
	defer x.hotMu.Unlock()
	if s, ok := x.hot[c]; ok {
		return s
	}
	s := x.expand(c)
	if len(x.hot) >= hotSize {
		for k := range x.hot {
			delete(x.hot, k)
			break
		}
	}
	x.hot[c] = s
	return s
}

func (x *Index) expand(c *compactScan) *facts.Scan {
	s := &facts.Scan{Malicious: c.malicious, Source: x.strs[c.source], Findings: make([]facts.Finding, len(c.findings))}
	if c.at != 0 {
		s.ScannedAt = unixNano(c.at)
	}
	for i, f := range c.findings {
		s.Findings[i] = facts.Finding{Category: categoryCodes.names[f.category], Level: levelCodes.names[f.level],
			Class: classCodes.names[f.class], ID: x.strs[f.id], Name: x.strs[f.name]}
	}
	return s
}
