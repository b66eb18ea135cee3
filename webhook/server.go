package webhook

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server runs the webhook: POST /validate, GET /healthz and GET /readyz over
// TLS on one address, and GET /metrics over plain HTTP (or TLS) on another.
type Server struct {
	Listen        string
	MetricsListen string // empty: no metrics server
	Handler       http.Handler
	Ready         func() bool // readiness beyond "serving" (a snapshot is loaded)
	// ReadyDetail is a line /readyz adds to a ready answer: something an
	// operator must know that does not make the server unready (e.g. a
	// refused policy change while the last good set stays in force).
	ReadyDetail     func() string
	Certs           *CertReloader
	Gatherer        prometheus.Gatherer
	ShutdownTimeout time.Duration
	// ShutdownDelay is how long, once ctx ends, the server goes on
	// accepting and answering (each answer closing its connection) before
	// it closes the listener and the connections left idle: see drain.
	ShutdownDelay time.Duration
	Logger        *slog.Logger
	// Extra handlers served on Listen beside /validate (e.g. "POST /api/v1/scans").
	Extra map[string]http.Handler
	// Limits bound slow and idle clients on both listeners; zero fields
	// take DefaultLimits.
	Limits Limits
	// TLSProfile applies to both listeners; empty: DefaultTLSProfile.
	TLSProfile TLSProfile
	// MetricsTLS serves /metrics over TLS with the serving certificate;
	// MetricsToken, when set, is the bearer token /metrics requires.
	MetricsTLS   bool
	MetricsToken string
	// MetricsTokens, when set, checks /metrics bearer tokens instead (a
	// token file that reloads).
	MetricsTokens TokenChecker
	// ClientCAs, when set, verify the client certificates presented on
	// Listen (the API server's); requests that came with one are
	// authenticated (see RequireClientCert).
	ClientCAs *x509.CertPool
	// ReadyWarnings, when set, are added to a ready /readyz answer, one
	// "warning: " line each: ready, but probably not as meant (no policy
	// names this cluster).
	ReadyWarnings func() []string
	// HTTP1Only offers only HTTP/1.1 on both listeners (ALPN without h2).
	HTTP1Only bool

	stopping atomic.Bool
	conns    connStates // connections on Listen
}

// Run serves until ctx ends, then reports not ready, closes kept-alive
// connections as they answer for up to ShutdownDelay, stops accepting, and
// drains requests in flight for up to ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return err
	}
	var mln net.Listener
	if s.MetricsListen != "" {
		if mln, err = net.Listen("tcp", s.MetricsListen); err != nil {
			ln.Close()
			return err
		}
	}
	return s.Serve(ctx, ln, mln)
}

// Serve is Run on listeners the caller opened (tests use port 0).
func (s *Server) Serve(ctx context.Context, ln, metricsLn net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("POST /validate", s.Handler)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.readyz)
	for pattern, h := range s.Extra {
		mux.Handle(pattern, h)
	}
	limits := s.Limits.withDefaults()
	srv := &http.Server{
		Handler:   s.closingWhenStopping(mux),
		ErrorLog:  slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
		TLSConfig: ServerTLSConfig(s.TLSProfile, s.Certs),
		ConnState: s.conns.track,
	}
	if s.ClientCAs != nil {
		srv.TLSConfig.ClientCAs, srv.TLSConfig.ClientAuth = s.ClientCAs, tls.VerifyClientCertIfGiven
	}
	limits.Apply(srv)
	s.protocols(srv)
	errc := make(chan error, 2)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	var msrv *http.Server
	if metricsLn != nil {
		mmux := http.NewServeMux()
		mmux.Handle("GET /metrics", bearer(s.metricsTokens(), promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{})))
		msrv = &http.Server{Handler: mmux, ErrorLog: srv.ErrorLog}
		limits.Apply(msrv)
		s.protocols(msrv)
		if s.MetricsTLS {
			msrv.TLSConfig = ServerTLSConfig(s.TLSProfile, s.Certs)
			go func() { errc <- msrv.ServeTLS(metricsLn, "", "") }()
		} else {
			go func() { errc <- msrv.Serve(metricsLn) }()
		}
	}
	go s.reloadCerts(ctx)
	s.Logger.Info("serving", "listen", ln.Addr().String(), "metrics", addr(metricsLn))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.stopping.Store(true)
	s.drain()
	s.Logger.Info("shutting down: draining requests in flight", "timeout", s.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if msrv != nil {
		_ = msrv.Shutdown(sctx)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.Logger.Warn("shutdown timed out with requests in flight")
	}
	return err
}

// drain waits, up to ShutdownDelay, for the connections on Listen to close,
// each after its next answer (closingWhenStopping). A client that sends a
// request on a kept-alive HTTP/1.1 connection just as the server closes it
// idle gets EOF or a reset, and the API server does not retry a POST: the
// admission fails. Closing a connection after an answer that says so (or,
// on HTTP/2, with GOAWAY) loses nothing, so busy connections go that way
// first; only those idle for the whole delay are closed under the client.
func (s *Server) drain() {
	if s.ShutdownDelay <= 0 {
		return
	}
	s.Logger.Info("shutting down: closing kept-alive connections as they answer", "delay", s.ShutdownDelay.String(), "open", s.conns.open())
	deadline := time.Now().Add(s.ShutdownDelay)
	for s.conns.open() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n, from := s.conns.count(); len(from) > 0 {
		// Idle ones are closed next, under clients that may be sending on
		// them: an admission failing now is this.
		s.Logger.Info("shutting down: connections left after the delay", "idle", n[http.StateIdle],
			"unused", n[http.StateNew], "active", n[http.StateActive], "from", from)
	}
}

// closingWhenStopping asks, once the server is stopping, that every answer
// close its connection ("Connection: close"; Go's HTTP/2 server sends
// GOAWAY for it).
func (s *Server) closingWhenStopping(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.stopping.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// connStates knows the state of each open connection, for drain.
type connStates struct {
	mu sync.Mutex
	m  map[net.Conn]http.ConnState
}

func (c *connStates) track(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(c.m, conn)
	default:
		if c.m == nil {
			c.m = map[net.Conn]http.ConnState{}
		}
		c.m[conn] = st
	}
}

func (c *connStates) open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// count returns the open connections per state and the remote addresses of
// a few of them (which client kept them).
func (c *connStates) count() (map[http.ConnState]int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := map[http.ConnState]int{}
	var from []string
	for conn, st := range c.m {
		n[st]++
		if len(from) < 8 {
			from = append(from, conn.RemoteAddr().String())
		}
	}
	return n, from
}

// protocols leaves srv offering HTTP/1.1 alone when HTTP1Only is set.
func (s *Server) protocols(srv *http.Server) {
	if s.HTTP1Only {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
	}
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.stopping.Load():
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	case s.Ready != nil && !s.Ready():
		http.Error(w, "no policy snapshot loaded", http.StatusServiceUnavailable)
	default:
		msg := "ok\n"
		if s.ReadyDetail != nil {
			if d := s.ReadyDetail(); d != "" {
				msg += d + "\n"
			}
		}
		if s.ReadyWarnings != nil {
			for _, w := range s.ReadyWarnings() {
				msg += "warning: " + w + "\n"
			}
		}
		_, _ = w.Write([]byte(msg))
	}
}

// reloadCerts picks up rotated serving certificates.
func (s *Server) reloadCerts(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := s.Certs.Reload()
			switch {
			case err != nil:
				s.Logger.Warn("serving certificate not reloaded; keeping the current one", "error", err.Error())
			case changed:
				s.Logger.Info("serving certificate reloaded")
			}
		}
	}
}

func addr(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// bearer lets through requests carrying token as their bearer token; an
// empty token lets every request through.
// TokenChecker says whether a bearer token is valid, and whose it is.
type TokenChecker interface {
	Check(token string) (principal string, ok bool)
}

// staticToken is one fixed token.
type staticToken string

func (t staticToken) Check(token string) (string, bool) {
	return "", subtle.ConstantTimeCompare([]byte(token), []byte(t)) == 1
}

func (s *Server) metricsTokens() TokenChecker {
	switch {
	case s.MetricsTokens != nil:
		return s.MetricsTokens
	case s.MetricsToken != "":
		return staticToken(s.MetricsToken)
	}
	return nil
}

func bearer(tokens TokenChecker, next http.Handler) http.Handler {
	if tokens == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, valid := tokens.Check(got); !ok || !valid {
			w.Header().Set("WWW-Authenticate", `Bearer realm="imagegate"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
