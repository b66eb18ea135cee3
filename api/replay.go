package api

import (
	"sync"
	"time"
)

// Replay memory defaults: a signed request's nonce is remembered for the
// clock window it could be accepted in, at most this many of them and
// about this many bytes.
const (
	DefaultReplayEntries = 200_000
	DefaultReplayBytes   = 32 << 20
	// SignatureWindow is how far a signed request's time may be from the
	// server's, either way.
	SignatureWindow = 15 * time.Minute
)

// replayEntryOverhead approximates a remembered nonce's bookkeeping
// besides its text (map bucket, queue slot, time).
const replayEntryOverhead = 64

// replays remembers the nonces of accepted signed requests. Memory is
// bounded: when full, the oldest entries are forgotten and the request
// time of the newest forgotten one becomes a floor below which every
// request is refused as expired, so a forgotten nonce can never be
// replayed (at the cost of refusing stragglers under a flood).
type replays struct {
	mu         sync.Mutex
	maxEntries int
	maxBytes   int
	bytes      int
	seen       map[string]time.Time // nonce -> request time
	queue      []replayEntry        // in arrival order
	head       int
	floor      time.Time
}

type replayEntry struct {
	key string
	at  time.Time
}

func newReplays(maxEntries, maxBytes int) *replays {
	return &replays{maxEntries: maxEntries, maxBytes: maxBytes, seen: map[string]time.Time{}}
}

// replayResult says what check found.
type replayResult int

const (
	replayFresh replayResult = iota
	replayUsed
	replayBelowFloor
)

// check records key (a nonce, scoped by scheme and access key id) for a
// request made at at, now being now; it reports a nonce seen already
// within the window, or a request older than what memory still covers.
func (r *replays) check(key string, at, now time.Time) replayResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now)
	if !at.After(r.floor) && !r.floor.IsZero() {
		return replayBelowFloor
	}
	if _, ok := r.seen[key]; ok {
		return replayUsed
	}
	size := len(key) + replayEntryOverhead
	for len(r.seen) > 0 && (len(r.seen)+1 > r.maxEntries || r.bytes+size > r.maxBytes) {
		r.evictOldest(true)
	}
	r.seen[key] = at
	r.queue = append(r.queue, replayEntry{key, at})
	r.bytes += size
	return replayFresh
}

// expire forgets entries whose request time left the window: a replay of
// them is refused by the clock check anyway. Entries arrive roughly in
// time order; one that is out of order stays until those before it go.
func (r *replays) expire(now time.Time) {
	for r.head < len(r.queue) && now.Sub(r.queue[r.head].at) > SignatureWindow {
		r.evictOldest(false)
	}
}

func (r *replays) evictOldest(raiseFloor bool) {
	e := r.queue[r.head]
	r.queue[r.head] = replayEntry{}
	r.head++
	delete(r.seen, e.key)
	r.bytes -= len(e.key) + replayEntryOverhead
	if raiseFloor && e.at.After(r.floor) {
		r.floor = e.at
	}
	// Compact the queue once half of it is spent, so it does not grow
	// without bound.
	if r.head > 1024 && r.head*2 > len(r.queue) {
		r.queue = append([]replayEntry(nil), r.queue[r.head:]...)
		r.head = 0
	}
}

func (r *replays) size() (entries, bytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen), r.bytes
}
