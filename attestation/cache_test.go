package attestation

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestCacheBoundedInBytes: entries are evicted, least recently used first,
// when their sizes pass the byte bound, whatever the entry bound; an entry
// larger than the whole cache is served but not kept.
func TestCacheBoundedInBytes(t *testing.T) {
	c := newTTLCache[[]byte](1000, 0, time.Now)
	c.maxBytes, c.sizeOf = 10<<10, func(b []byte) int64 { return int64(len(b)) }
	ttl := func([]byte) time.Duration { return time.Hour }
	get := func(key string, size int) string {
		_, status, err := c.get(context.Background(), key, "", ttl, func(context.Context) ([]byte, error) {
			return make([]byte, size), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	for i := range 100 {
		get(fmt.Sprint(i), 1<<10)
	}
	if n := c.len(); n != 10 {
		t.Errorf("100 entries of 1 KiB under a 10 KiB bound: %d kept, want 10", n)
	}
	if c.bytes > c.maxBytes {
		t.Errorf("cache holds %d bytes, bound %d", c.bytes, c.maxBytes)
	}
	if s := get("99", 1<<10); s != cacheHit {
		t.Errorf("most recent entry: %s, want a hit", s)
	}
	if s := get("0", 1<<10); s != cacheMiss {
		t.Errorf("oldest entry: %s, want evicted (a miss)", s)
	}
	get("huge", 20<<10)
	if s := get("huge", 20<<10); s != cacheMiss {
		t.Errorf("an entry larger than the cache: %s, want not kept", s)
	}
	if c.bytes > c.maxBytes {
		t.Errorf("cache holds %d bytes after a huge entry, bound %d", c.bytes, c.maxBytes)
	}
}
