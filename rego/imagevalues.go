package rego

import (
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/workload"
	"github.com/open-policy-agent/opa/v1/ast"
)

// maxImageValues and maxImageValueBytes (imageCost's estimate) bound an
// engine's image values; past either, entries are dropped at random.
const (
	maxImageValues     = 4096
	maxImageValueBytes = 8 << 20
)

// imageValues remembers images' input values (imageValue): the pods of a
// cluster name the same few images, with the same facts, again and again,
// and an image's value costs glob matching and about ten allocations to
// build. Input terms are never modified, so sharing them is safe. It belongs
// to one engine: a policy change starts it empty.
type imageValues struct {
	mu    sync.RWMutex
	m     map[imageKey]imageValueEntry
	bytes int64
}

type imageValueEntry struct {
	t    *ast.Term
	size int64
}

// imageKey is everything an image's value depends on: the reference (its
// names, tag and parse error follow from it), the scan (shared and
// read-only, as facts sources hand them out; whether it is stale is part of
// the key), the malicious flag, the verified attestors and the scan note.
// Facts with attestor errors are not cached (keyOf says so).
type imageKey struct {
	ref       string
	policies  bool // whether BinarySecurityPolicies apply in the namespace (imageValue's withPolicies)
	scan      *facts.Scan
	stale     bool
	malicious bool
	attestors string
	scanNote  string
}

func (e *Engine) keyOf(img *workload.Image, f *facts.Image, now time.Time, withPolicies bool) (imageKey, bool) {
	if len(f.AttestorErrors) > 0 || len(f.Unverifiable) > 0 {
		return imageKey{}, false
	}
	k := imageKey{ref: img.Ref, policies: withPolicies, scan: f.Scan, stale: f.Scan != nil && e.stale(f.Scan, now), malicious: f.Malicious, scanNote: f.ScanNote}
	switch len(f.Attestors) {
	case 0:
	case 1:
		k.attestors = f.Attestors[0]
	default:
		k.attestors = strings.Join(f.Attestors, "\x00")
	}
	return k, true
}

// imageTerm is ast.NewTerm(e.imageValue(img, f, now, withPolicies)), from
// the cache when the same image with the same facts was seen.
func (e *Engine) imageTerm(img *workload.Image, f *facts.Image, now time.Time, withPolicies bool) *ast.Term {
	if f == nil {
		f = &noFacts
	}
	k, ok := e.keyOf(img, f, now, withPolicies)
	if !ok || e.cache == nil { // no decision cache: every request is new (the cold benchmarks)
		return ast.NewTerm(e.imageValue(img, f, now, withPolicies))
	}
	c := &e.images
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v.t
	}
	t := ast.NewTerm(e.imageValue(img, f, now, withPolicies))
	size := imageCost(img, f)
	if size > maxImageValueBytes/16 {
		return t // one outsized image must not flush everything else
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[imageKey]imageValueEntry)
	}
	for old, v := range c.m {
		if len(c.m) < maxImageValues && c.bytes+size <= maxImageValueBytes {
			break
		}
		c.bytes -= v.size
		delete(c.m, old)
	}
	if prev, ok := c.m[k]; ok {
		c.bytes -= prev.size
	}
	c.m[k] = imageValueEntry{t, size}
	c.bytes += size
	c.mu.Unlock()
	return t
}
