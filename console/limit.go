package console

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Failed sign-ins are bounded per source address, so the sign-in form is
// no faster a way to guess tokens than it is to type them.
const (
	DefaultSignInFailures = 10
	signInWindow          = time.Minute
	maxSignInSources      = 10000
)

// failures counts failed sign-ins per source address in fixed windows.
type failures struct {
	mu  sync.Mutex
	max int
	m   map[string]*failWindow
}

type failWindow struct {
	n     int
	until time.Time
}

func newFailures(max int) *failures { return &failures{max: max, m: map[string]*failWindow{}} }

// blocked reports whether src used up its failures; retry is how long
// until it may try again.
func (f *failures) blocked(src string, now time.Time) (retry time.Duration, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.m[src]
	if w == nil || !now.Before(w.until) || w.n < f.max {
		return 0, false
	}
	return w.until.Sub(now), true
}

func (f *failures) fail(src string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.m[src]
	if w == nil || !now.Before(w.until) {
		if len(f.m) >= maxSignInSources {
			for k, v := range f.m {
				if !now.Before(v.until) {
					delete(f.m, k)
				}
			}
			if len(f.m) >= maxSignInSources {
				// Still full of live windows: start over rather than grow.
				f.m = map[string]*failWindow{}
			}
		}
		w = &failWindow{until: now.Add(signInWindow)}
		f.m[src] = w
	}
	w.n++
}

// source is the peer address: forwarding headers are not trusted, as for
// the management API's acs:SourceIp.
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
