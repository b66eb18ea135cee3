package rego

import (
	"container/list"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// decisionCache remembers decisions by their complete Rego input. Pods of one
// ReplicaSet, Job or rollout arrive with identical namespaces, labels, images
// and facts, so their decisions repeat; a hit costs a hash and one
// comparison instead of an evaluation. The cache belongs to one engine (one
// snapshot), so a policy change starts it empty. It is a bounded LRU.
type decisionCache struct {
	mu  sync.Mutex
	max int
	ll  *list.List
	m   map[int][]*list.Element
}

type cached struct {
	hash  int
	input ast.Value
	d     *Decision
}

func newDecisionCache(max int) *decisionCache {
	if max <= 0 {
		return nil
	}
	return &decisionCache{max: max, ll: list.New(), m: map[int][]*list.Element{}}
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

func (c *decisionCache) put(hash int, input ast.Value, d *Decision) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[hash] = append(c.m[hash], c.ll.PushFront(&cached{hash: hash, input: input, d: d}))
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		e := old.Value.(*cached)
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
