package attestation

import (
	"sync"
	"sync/atomic"
)

// compiledAttestors remembers compiled attestors by pointer (the warm path:
// one map load, no hashing) and by definition hash (a policy reload makes
// new pointers for unchanged attestors; they reuse the compiled verifier).
//
// It keeps two generations: lookups promote what they find in the older
// one, and when the current one holds max entries it becomes the older one
// and the previous older one is dropped. Pointers of snapshots no longer in
// force are therefore forgotten after a few reloads, and it never holds
// more than 2×max entries.
type compiledAttestors struct {
	max      int
	mu       sync.Mutex
	cur, old atomic.Pointer[sync.Map] // *policy.Attestor or definition hash -> *compiledAttestor
	n        int                      // entries stored in cur
}

func newCompiledAttestors(max int) *compiledAttestors {
	c := &compiledAttestors{max: max}
	c.cur.Store(new(sync.Map))
	c.old.Store(new(sync.Map))
	return c
}

func (c *compiledAttestors) load(k any) (*compiledAttestor, bool) {
	if v, ok := c.cur.Load().Load(k); ok {
		return v.(*compiledAttestor), true
	}
	if v, ok := c.old.Load().Load(k); ok {
		c.store(k, v.(*compiledAttestor))
		return v.(*compiledAttestor), true
	}
	return nil, false
}

func (c *compiledAttestors) store(k any, v *compiledAttestor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n >= c.max {
		c.old.Store(c.cur.Load())
		c.cur.Store(new(sync.Map))
		c.n = 0
	}
	if _, loaded := c.cur.Load().Swap(k, v); !loaded {
		c.n++
	}
}

// len is the number of entries held, for tests.
func (c *compiledAttestors) len() int {
	n := 0
	for _, m := range []*sync.Map{c.cur.Load(), c.old.Load()} {
		m.Range(func(any, any) bool { n++; return true })
	}
	return n
}
