package workload

import "sync"

// maxParsed bounds the parsed-reference cache; a cluster runs far fewer
// distinct images, and past the bound entries are dropped at random.
const maxParsed = 4096

// maxParsedLen is the longest reference cached: longer than any valid one
// (a 255-character name, a 128-character tag and a digest), so that the
// cache holds at most maxParsed × maxParsedLen bytes of keys however long
// the references pods name.
const maxParsedLen = 1024

// parsed remembers ParseImage's results by reference: the pods of a cluster
// name few distinct images again and again, and parsing one allocates about
// a dozen times. ParseImage is a pure function, so the cache needs no reset;
// an Image's Names are shared between the requests that name it and must
// not be modified.
var parsed = struct {
	sync.RWMutex
	m map[string]Image
}{m: make(map[string]Image)}

// parseCached is ParseImage through the cache.
func parseCached(ref string) Image {
	parsed.RLock()
	img, ok := parsed.m[ref]
	parsed.RUnlock()
	if ok {
		return img
	}
	img = ParseImage(ref)
	if len(ref) > maxParsedLen {
		return img
	}
	parsed.Lock()
	if len(parsed.m) >= maxParsed {
		for k := range parsed.m {
			delete(parsed.m, k)
			break
		}
	}
	parsed.m[ref] = img
	parsed.Unlock()
	return img
}
