package workload

import (
	"strings"
	"testing"
)

// A pod naming references of hundreds of kilobytes (the API server accepts
// them) does not get them kept in the parse cache.
func TestParseCacheSkipsLongReferences(t *testing.T) {
	long := "registry.example.com/" + strings.Repeat("a", 200<<10) + ":1"
	if img := parseCached(long); img.Ref != long {
		t.Fatalf("parsed %q", img.Ref[:40])
	}
	parsed.RLock()
	_, kept := parsed.m[long]
	parsed.RUnlock()
	if kept {
		t.Error("a 200 KiB reference was cached")
	}
	short := "registry.example.com/app:1"
	parseCached(short)
	parsed.RLock()
	_, kept = parsed.m[short]
	parsed.RUnlock()
	if !kept {
		t.Error("a valid reference was not cached")
	}
}
