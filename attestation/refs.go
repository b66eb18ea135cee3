package attestation

import (
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// maxParsedRefs bounds the parsed-reference cache. Image strings come from
// admission requests (each at most the request body), so the bound in
// entries bounds its bytes too.
const maxParsedRefs = 2048

// maxCachedRefLen is the longest reference cached (longer than any valid
// one), bounding the cache's bytes with its entries.
const maxCachedRefLen = 1024

// parsedRef is an image reference parsed once: a warm verification is
// otherwise mostly reference parsing (about 60 % of its allocations).
type parsedRef struct {
	ref      name.Reference
	name     string // ref.Name(): the digest cache's key
	repoName string // ref.Context().Name(): the signature cache's key prefix
}

// refCache maps image strings to parsed references. When full it is
// emptied rather than evicted entry by entry: parsing again is cheap, and
// the working set of a cluster's images refills it at once.
type refCache struct {
	mu sync.RWMutex
	m  map[string]*parsedRef
}

// parse parses ref as the verifier does (plain HTTP for insecure
// registries), remembering the result.
func (c *refCache) parse(ref string, insecure []string) (*parsedRef, error) {
	c.mu.RLock()
	p, ok := c.m[ref]
	c.mu.RUnlock()
	if ok {
		return p, nil
	}
	r, err := parse(ref, insecure)
	if err != nil {
		return nil, err
	}
	p = &parsedRef{ref: r, name: r.Name(), repoName: r.Context().Name()}
	if len(ref) > maxCachedRefLen {
		return p, nil
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxParsedRefs {
		c.m = make(map[string]*parsedRef)
	}
	c.m[ref] = p
	c.mu.Unlock()
	return p, nil
}
