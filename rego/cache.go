package rego

import (
	"container/list"
	"sync"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/workload"
	"github.com/open-policy-agent/opa/v1/ast"
)

// decisionCache remembers decisions by their complete Rego input. Pods of one
// ReplicaSet, Job or rollout arrive with identical namespaces, labels, images
// and facts, so their decisions repeat; a hit costs a hash and one
// comparison instead of an evaluation. The cache belongs to one engine (one
// snapshot), so a policy change starts it empty. It is an LRU bounded in
// entries and in bytes (inputCost's estimate of what an entry holds: its
// input, images and findings included, as the entry keeps them alive).
type decisionCache struct {
	mu       sync.Mutex
	max      int
	maxBytes int64
	bytes    int64
	ll       *list.List
	m        map[int][]*list.Element
}

type cached struct {
	hash  int
	input ast.Value
	d     *Decision
	size  int64
}

// decisionCacheBytes bounds the decision cache's bytes.
const decisionCacheBytes = 16 << 20

func newDecisionCache(max int) *decisionCache {
	if max <= 0 {
		return nil
	}
	return &decisionCache{max: max, maxBytes: decisionCacheBytes, ll: list.New(), m: map[int][]*list.Element{}}
}

func (c *decisionCache) get(hash int, input ast.Value) (*Decision, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, el := range c.m[hash] {
		if e := el.Value.(*cached); ast.Compare(e.input, input) == 0 {
			c.ll.MoveToFront(el)
			return e.d, true
		}
	}
	return nil, false
}

func (c *decisionCache) put(hash int, input ast.Value, d *Decision, size int64) {
	if c == nil || size > c.maxBytes/16 {
		return // one outsized request must not flush everything else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[hash] = append(c.m[hash], c.ll.PushFront(&cached{hash: hash, input: input, d: d, size: size}))
	c.bytes += size
	for c.ll.Len() > c.max || c.bytes > c.maxBytes {
		old := c.ll.Back()
		c.ll.Remove(old)
		e := old.Value.(*cached)
		c.bytes -= e.size
		els := c.m[e.hash]
		for i, el := range els {
			if el == old {
				els = append(els[:i], els[i+1:]...)
				break
			}
		}
		if len(els) == 0 {
			delete(c.m, e.hash)
		} else {
			c.m[e.hash] = els
		}
	}
}

// inputCost estimates the bytes an input's value holds: its strings, and
// per image and finding the terms that represent them.
func inputCost(in Input) int64 {
	n := 512 + int64(len(in.Namespace))
	for k, v := range in.Labels {
		n += 96 + int64(len(k)+len(v))
	}
	for i := range in.Images {
		var f *facts.Image
		if i < len(in.Facts) {
			f = in.Facts[i]
		}
		n += imageCost(&in.Images[i], f)
	}
	return n
}

// imageCost estimates the bytes an image's value holds: about 6.5 KB
// without findings (a soak's heap profile: 26 MB for 4,096 image values of
// signed, unscanned images), plus its strings and findings.
func imageCost(img *workload.Image, f *facts.Image) int64 {
	n := 6<<10 + 4*int64(len(img.Ref))
	if f == nil {
		return n
	}
	for _, a := range f.Attestors {
		n += 64 + int64(len(a))
	}
	n += int64(len(f.ScanNote) + len(f.MaliciousReason))
	if f.Scan != nil {
		for _, x := range f.Scan.Findings {
			n += 400 + int64(len(x.ID)+len(x.Name))
		}
	}
	return n
}
