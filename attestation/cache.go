package attestation

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// How a cache lookup was answered, for metrics.
const (
	cacheHit   = "hit"
	cacheMiss  = "miss"
	cacheJoin  = "join" // joined a fetch already in flight (single-flight)
	cacheStale = "stale"
)

// ttlCache is a bounded LRU whose entries expire, whose concurrent misses for
// one key share one fetch, and which serves an expired entry for up to
// staleIfError when refetching it fails with an error that says nothing about
// the image (the registry is down, not the signature wrong).
type ttlCache[V any] struct {
	max          int
	staleIfError time.Duration
	now          func() time.Time
	// maxBytes bounds the sum of sizeOf over the entries, when set.
	maxBytes int64
	sizeOf   func(V) int64
	bytes    int64

	mu      sync.Mutex
	ll      *list.List
	entries map[string]*list.Element
	flights map[string]*flight[V]
}

type entry[V any] struct {
	key     string
	val     V
	expires time.Time
	size    int64
}

type flight[V any] struct {
	done chan struct{}
	val  V
	err  error
}

func newTTLCache[V any](max int, staleIfError time.Duration, now func() time.Time) *ttlCache[V] {
	return &ttlCache[V]{max: max, staleIfError: staleIfError, now: now, ll: list.New(),
		entries: map[string]*list.Element{}, flights: map[string]*flight[V]{}}
}

// get returns the value for key, fetching it on a miss. ttl says how long a
// fetched value stays fresh (a short time for "no signatures"). The returned
// status is one of the cache* constants. Concurrent misses share a fetch only
// when their scope is equal too: a request with registry credentials must not
// wait for, and inherit the auth failure of, one without.
func (c *ttlCache[V]) get(ctx context.Context, key, scope string, ttl func(V) time.Duration, fetch func(context.Context) (V, error)) (V, string, error) {
	c.mu.Lock()
	now := c.now()
	var stale *entry[V]
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*entry[V])
		if now.Before(e.expires) {
			c.ll.MoveToFront(el)
			c.mu.Unlock()
			return e.val, cacheHit, nil
		}
		if now.Before(e.expires.Add(c.staleIfError)) {
			stale = e
		}
	}
	fkey := key
	if scope != "" {
		fkey = key + "\x00" + scope
	}
	if f, ok := c.flights[fkey]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.val, cacheJoin, f.err
		case <-ctx.Done():
			// This caller's deadline came before the shared fetch ended:
			// the registry is slow, which stale-if-error covers as well as
			// a registry that is down.
			if stale != nil {
				return stale.val, cacheStale, nil
			}
			var zero V
			return zero, cacheJoin, &UnverifiableError{Reason: "waiting for the registry: timeout", Err: ctx.Err()}
		}
	}
	f := &flight[V]{done: make(chan struct{})}
	c.flights[fkey] = f
	c.mu.Unlock()

	f.val, f.err = fetch(ctx)
	status := cacheMiss
	c.mu.Lock()
	delete(c.flights, fkey)
	switch {
	case f.err == nil:
		c.put(key, f.val, c.now().Add(ttl(f.val)))
	case stale != nil && !isVerdict(f.err):
		f.val, f.err, status = stale.val, nil, cacheStale
	}
	c.mu.Unlock()
	close(f.done)
	return f.val, status, f.err
}

func (c *ttlCache[V]) put(key string, val V, expires time.Time) {
	var size int64
	if c.sizeOf != nil {
		size = c.sizeOf(val)
		if c.maxBytes > 0 && size > c.maxBytes {
			return // larger than the whole cache: served, not kept
		}
	}
	if el, ok := c.entries[key]; ok {
		c.bytes -= el.Value.(*entry[V]).size
		el.Value = &entry[V]{key: key, val: val, expires: expires, size: size}
		c.ll.MoveToFront(el)
	} else {
		c.entries[key] = c.ll.PushFront(&entry[V]{key: key, val: val, expires: expires, size: size})
	}
	c.bytes += size
	for c.ll.Len() > c.max || (c.maxBytes > 0 && c.bytes > c.maxBytes) {
		old := c.ll.Back()
		c.ll.Remove(old)
		e := old.Value.(*entry[V])
		delete(c.entries, e.key)
		c.bytes -= e.size
	}
}

func (c *ttlCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

func isVerdict(err error) bool {
	_, ok := err.(*VerificationError)
	return ok
}
