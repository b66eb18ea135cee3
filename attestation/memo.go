package attestation

import (
	"errors"
	"net/http"
	"sync"
	"time"
)

// What a registry says about itself once holds for every image on it: how
// it wants to be authenticated (the answer to GET /v2/) and whether it
// serves the OCI referrers API. go-containerregistry asks both again for
// every repository (a ping per repository reader, the referrers API before
// its tag fallback), which is one or two requests of every cold image. The
// answers are remembered per registry for a few minutes instead.
const (
	memoTTL      = 5 * time.Minute
	memoEntries  = 4096 // registries; keys are host names, so ≤ ~1 MiB in all
	memoMaxKey   = 300
	memoMaxValue = 1 << 10 // a WWW-Authenticate header longer than this is not kept
)

// hostMemo remembers a small value per registry host for memoTTL, bounded
// in entries (and so in bytes: keys and values are bounded too). When full,
// expired entries go first, then an arbitrary one: losing an entry costs
// one request, never a wrong answer.
type hostMemo[V any] struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]memoEntry[V]
}

type memoEntry[V any] struct {
	v   V
	exp time.Time
}

func newHostMemo[V any](now func() time.Time) *hostMemo[V] {
	return &hostMemo[V]{now: now, m: map[string]memoEntry[V]{}}
}

func (h *hostMemo[V]) get(host string) (V, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[host]
	if !ok || !h.now().Before(e.exp) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (h *hostMemo[V]) put(host string, v V) {
	if len(host) > memoMaxKey {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if _, ok := h.m[host]; !ok && len(h.m) >= memoEntries {
		makeRoom(h.m, memoEntries, func(e memoEntry[V]) bool { return !now.Before(e.exp) })
	}
	h.m[host] = memoEntry[V]{v: v, exp: now.Add(memoTTL)}
}

// makeRoom leaves m with fewer than max entries: expired ones go first,
// then arbitrary ones (for a memo of what a request could ask again, losing
// an entry costs a request, never a wrong answer).
func makeRoom[V any](m map[string]V, max int, expired func(V) bool) {
	for k, v := range m {
		if expired(v) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < max {
			return
		}
		delete(m, k)
	}
}

func (h *hostMemo[V]) forget(host string) {
	h.mu.Lock()
	delete(h.m, host)
	h.mu.Unlock()
}

// pingAnswer is what go-containerregistry reads of a GET /v2/ answer: the
// status (200: anonymous; 401: the challenge says how to authenticate).
type pingAnswer struct {
	status    int
	challenge []string // WWW-Authenticate
	// failed: HTTPS could not be spoken (a plain-HTTP registry, which
	// go-containerregistry pings over both schemes at once every time).
	failed bool
}

// errNoHTTPS answers the HTTPS ping of a registry that recently failed it.
var errNoHTTPS = errors.New("registry did not speak HTTPS when last pinged")

// isPing reports an unauthenticated GET /v2/, go-containerregistry's ping.
func isPing(req *http.Request) bool {
	return req.Method == http.MethodGet && req.URL.Path == "/v2/" && req.URL.RawQuery == "" &&
		req.Header.Get("Authorization") == ""
}

// pingFromMemo answers a ping from what the registry said last time.
func (g *guard) pingFromMemo(req *http.Request) (*http.Response, bool, error) {
	a, ok := g.pings.get(req.URL.Scheme + "://" + req.URL.Host)
	if !ok {
		return nil, false, nil
	}
	if a.failed {
		return nil, true, errNoHTTPS
	}
	h := http.Header{}
	for _, c := range a.challenge {
		h.Add("WWW-Authenticate", c)
	}
	return &http.Response{
		Status: http.StatusText(a.status), StatusCode: a.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: http.NoBody, ContentLength: 0, Request: req,
	}, true, nil
}

// pingFailed remembers that an HTTPS ping to a registry that may speak
// plain HTTP (loopback, --insecure-registries) could not be made, so that
// every new registry client does not repeat a TLS handshake bound to fail.
func (g *guard) pingFailed(req *http.Request) {
	if req.URL.Scheme == "https" && g.plainHTTPAllowed(req.URL.Hostname(), req.URL.Host) && req.Context().Err() == nil {
		g.pings.put("https://"+req.URL.Host, pingAnswer{failed: true})
	}
}

// unreachable forgets what a registry said of itself once a request to it
// could not be made: it may have moved to another scheme or address.
func (g *guard) unreachable(req *http.Request) {
	if req.Context().Err() == nil {
		g.pings.forget("http://" + req.URL.Host)
		g.pings.forget("https://" + req.URL.Host)
	}
}

// pingSeen keeps a ping's answer, or forgets the remembered one when a
// request was refused for credentials: the registry's requirements may have
// changed, and the next ping must ask it.
func (g *guard) pingSeen(req *http.Request, resp *http.Response, ping bool) {
	switch {
	case ping:
		g.rememberPing(req, resp)
	case resp.StatusCode == http.StatusUnauthorized:
		g.pings.forget(req.URL.Scheme + "://" + req.URL.Host)
	}
}

// rememberPing keeps a ping's answer when it is one that decides how to
// authenticate (200 or 401 with a bounded challenge).
func (g *guard) rememberPing(req *http.Request, resp *http.Response) {
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return
	}
	a := pingAnswer{status: resp.StatusCode, challenge: resp.Header.Values("WWW-Authenticate")}
	n := 0
	for _, c := range a.challenge {
		n += len(c)
	}
	if n > memoMaxValue {
		return
	}
	a.challenge = append([]string(nil), a.challenge...)
	g.pings.put(req.URL.Scheme+"://"+req.URL.Host, a)
}
