package compliance

import (
	"container/heap"
	"sort"
	"time"

	"github.com/imagegate/imagegate/inventory"
)

// index adds a state to the digest, reference, strategy and expiry indexes.
func (m *Monitor) index(s *State) {
	add := func(idx map[string]map[inventory.Key]struct{}, v string) {
		if idx[v] == nil {
			idx[v] = map[inventory.Key]struct{}{}
		}
		idx[v][s.key] = struct{}{}
	}
	for _, d := range s.digests {
		add(m.byDigest, d)
	}
	for _, r := range s.refs {
		add(m.byRef, r)
	}
	for _, id := range s.strategies {
		if m.byStrategy[id] == nil {
			m.byStrategy[id] = map[inventory.Key]struct{}{}
		}
		m.byStrategy[id][s.key] = struct{}{}
	}
	if !s.expires.IsZero() {
		heap.Push(&m.expiry, expiryItem{due: s.expires, key: s.key})
	}
}

// unindex removes a replaced state from the indexes.
func (m *Monitor) unindex(s *State) {
	del := func(idx map[string]map[inventory.Key]struct{}, v string) {
		delete(idx[v], s.key)
		if len(idx[v]) == 0 {
			delete(idx, v)
		}
	}
	for _, d := range s.digests {
		del(m.byDigest, d)
	}
	for _, r := range s.refs {
		del(m.byRef, r)
	}
	for _, id := range s.strategies {
		delete(m.byStrategy[id], s.key)
		if len(m.byStrategy[id]) == 0 {
			delete(m.byStrategy, id)
		}
	}
	// Its expiry item stays in the heap and is skipped when due (the
	// state's expires no longer matches); the heap holds at most one live
	// item per state plus those stale ones, which a full heap sheds.
	if len(m.expiry) > 4*len(m.states)+1024 {
		m.compactExpiry()
	}
}

// compactExpiry drops expiry items of replaced states.
func (m *Monitor) compactExpiry() {
	live := m.expiry[:0]
	for _, x := range m.expiry {
		if s, ok := m.states[x.key]; ok && s.expires.Equal(x.due) {
			live = append(live, x)
		}
	}
	m.expiry = live
	heap.Init(&m.expiry)
}

// States returns the current states, sorted by key.
func (m *Monitor) States() []*State {
	m.mu.Lock()
	out := make([]*State, 0, len(m.states))
	for _, s := range m.states {
		out = append(out, s)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].key.String() < out[j].key.String() })
	return out
}

// InNamespace returns the states of one namespace, sorted by key.
func (m *Monitor) InNamespace(ns string) []*State {
	m.mu.Lock()
	var out []*State
	for k, s := range m.states {
		if k.Namespace == ns {
			out = append(out, s)
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].key.String() < out[j].key.String() })
	return out
}

// State returns one workload's state.
func (m *Monitor) State(k inventory.Key) (*State, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.states[k]
	return s, ok
}

// WithStrategy lists the workloads a strategy hits.
func (m *Monitor) WithStrategy(id int64) map[inventory.Key]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[inventory.Key]bool, len(m.byStrategy[id]))
	for k := range m.byStrategy[id] {
		out[k] = true
	}
	return out
}

// expiryItem is when a workload's earliest scan ages past --max-scan-age.
type expiryItem struct {
	due time.Time
	key inventory.Key
}

// expiryHeap orders expiry items, soonest first.
type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
