package audit

import (
	"sync"
	"time"
)

// Refused API calls (a missing or wrong token, no permission, an unknown
// operation) cost an attacker nothing, so they are aggregated before they
// reach the sinks: per window, the first refused call of each source,
// principal, action and code is recorded in full, and the others of the
// same kind are counted into one summary event (Count, Until) at the
// window's end. Kinds beyond the table's size share one overflow summary.
// A flood of any size thus writes at most 2×keys+1 events per window.
const (
	DefaultRefusalWindow = time.Minute
	DefaultRefusalKeys   = 256
	// maxFieldBytes bounds each string of an API call event (a refused
	// call's action or resource is the caller's text).
	maxFieldBytes = 256
	maxGroups     = 32
	// OverflowCode is the code of the summary of refused calls of kinds the
	// table had no room for.
	OverflowCode = "Aggregated.Overflow"
)

// WithRefusalWindow sets the window refused API calls are aggregated over.
func WithRefusalWindow(d time.Duration) Option { return func(o *options) { o.refusalWindow = d } }

// WithRefusalKeys bounds the kinds of refused API calls (source, principal,
// action, code) counted apart in one window.
func WithRefusalKeys(n int) Option { return func(o *options) { o.refusalKeys = n } }

type refusalKey struct{ source, principal, action, code string }

// refusalCount is the summary of one kind: the first call it counts, how
// many, and the last one's time.
type refusalCount struct {
	first APICall
	count int
	last  time.Time
}

func (c *refusalCount) add(call *APICall) {
	if c.count == 0 {
		c.first = *call
	}
	c.count++
	c.last = call.Time
}

// refusals is the aggregation table; bounded by keys entries of bounded
// size (the fields are cut to maxFieldBytes before they get here).
type refusals struct {
	mu       sync.Mutex
	window   time.Duration
	keys     int
	start    time.Time // of the current window; zero when none is open
	seen     map[refusalKey]*refusalCount
	overflow refusalCount
}

func newRefusals(window time.Duration, keys int) *refusals {
	return &refusals{window: window, keys: keys, seen: map[refusalKey]*refusalCount{}}
}

// admit says whether a refused call is recorded in full; if not, it is
// counted for the window's summary.
func (r *refusals) admit(c *APICall) bool {
	k := refusalKey{c.SourceIP, c.Principal, c.Action, c.Code}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.start.IsZero() {
		r.start = c.Time
	}
	if e, ok := r.seen[k]; ok {
		e.add(c)
		return false
	}
	if len(r.seen) >= r.keys {
		r.overflow.add(c)
		return false
	}
	r.seen[k] = &refusalCount{}
	return true
}

// due ends the window when it is over (or when flush is set) and returns
// its summaries as queued calls.
func (r *refusals) due(now time.Time, flush bool) []Admission {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.start.IsZero() || (!flush && now.Sub(r.start) < r.window) {
		return nil
	}
	var out []Admission
	summary := func(c *refusalCount) {
		if c.count > 0 {
			call := c.first
			out = append(out, Admission{Time: call.Time, api: &call, apiCount: c.count, apiUntil: c.last})
		}
	}
	for _, c := range r.seen {
		summary(c)
	}
	if r.overflow.count > 0 {
		r.overflow.first = APICall{Time: r.overflow.first.Time, Statement: -1, Code: OverflowCode,
			Decision: "refused calls of more kinds (source, principal, action, code) than the aggregation table holds"}
		summary(&r.overflow)
	}
	r.seen, r.overflow, r.start = map[refusalKey]*refusalCount{}, refusalCount{}, time.Time{}
	return out
}

// bound cuts an API call's strings to maxFieldBytes and its groups to
// maxGroups, so that no caller's text makes an event large.
func bound(c *APICall) {
	for _, s := range []*string{&c.RequestID, &c.Principal, &c.Agency, &c.Action, &c.Resource, &c.Decision,
		&c.PolicyID, &c.Sid, &c.SourceIP, &c.Code} {
		if len(*s) > maxFieldBytes {
			*s = (*s)[:maxFieldBytes] + "…"
		}
	}
	if len(c.Groups) > maxGroups {
		c.Groups = c.Groups[:maxGroups]
	}
	for i, g := range c.Groups {
		if len(g) > maxFieldBytes {
			c.Groups = append([]string(nil), c.Groups...)
			c.Groups[i] = g[:maxFieldBytes] + "…"
		}
	}
}
