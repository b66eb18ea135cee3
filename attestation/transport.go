package attestation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// guard is the verifier's http.RoundTripper. It refuses plain HTTP except to
// loopback and explicitly insecure registries, bounds concurrent requests per
// registry, retries 429 and 5xx answers with backoff (honouring Retry-After)
// only while the request's deadline allows, bounds every response body, and
// counts requests by registry and status.
type guard struct {
	next     http.RoundTripper
	insecure map[string]bool
	perHost  int
	maxBody  int64
	retries  int
	backoff  time.Duration
	count    func(registry, status string)
	pings    *hostMemo[pingAnswer] // nil: every ping goes to the registry

	// slots holds a limiter per registry while requests to it are in
	// flight or waiting; the last one out removes it, so pods naming
	// thousands of registries leave nothing behind.
	mu    sync.Mutex
	slots map[string]*hostSlots
}

type hostSlots struct {
	ch    chan struct{}
	users int // requests holding or waiting for a slot
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	if req.URL.Scheme == "http" && !g.plainHTTPAllowed(req.URL.Hostname(), host) {
		return nil, fmt.Errorf("%w %s (only loopback and --insecure-registries)", errPlainHTTP, host)
	}
	ping := g.pings != nil && isPing(req)
	if ping {
		if resp, ok, err := g.pingFromMemo(req); ok {
			return resp, err
		}
	}
	slot := g.enter(host)
	defer g.leave(host, slot)
	select {
	case slot.ch <- struct{}{}:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	defer func() { <-slot.ch }()
	for attempt := 0; ; attempt++ {
		resp, err := g.next.RoundTrip(req)
		if err != nil {
			g.count(host, "error")
			switch {
			case g.pings == nil:
			case ping:
				g.pingFailed(req)
			default:
				g.unreachable(req)
			}
			return nil, err
		}
		g.count(host, strconv.Itoa(resp.StatusCode))
		if g.pings != nil {
			g.pingSeen(req, resp, ping)
		}
		if !retryable(resp.StatusCode) || attempt >= g.retries || req.Body != nil && req.GetBody == nil {
			resp.Body = &boundedBody{ReadCloser: resp.Body, left: g.maxBody}
			return resp, nil
		}
		wait := g.backoff << attempt
		if ra := retryAfter(resp.Header.Get("Retry-After")); ra > 0 {
			wait = ra
		}
		if dl, ok := req.Context().Deadline(); ok && time.Until(dl) < wait {
			resp.Body = &boundedBody{ReadCloser: resp.Body, left: g.maxBody}
			return resp, nil // no time left to retry: let the caller see the answer
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

func (g *guard) plainHTTPAllowed(hostname, hostport string) bool {
	if g.insecure[hostport] || g.insecure[hostname] || hostname == "localhost" {
		return true
	}
	ip := net.ParseIP(hostname)
	return ip != nil && ip.IsLoopback()
}

func (g *guard) enter(host string) *hostSlots {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.slots[host]
	if !ok {
		s = &hostSlots{ch: make(chan struct{}, g.perHost)}
		g.slots[host] = s
	}
	s.users++
	return s
}

func (g *guard) leave(host string, s *hostSlots) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.users--; s.users == 0 {
		delete(g.slots, host)
	}
}

func retryable(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errPlainHTTP refuses an http:// registry that is not allowed plain HTTP.
var errPlainHTTP = errors.New("refusing plain HTTP to registry")

// errTooLarge is returned when a registry answers with more than the bound.
var errTooLarge = errors.New("registry response too large")

type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errTooLarge
	}
	return n, err
}
