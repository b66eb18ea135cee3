package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server runs the webhook: POST /validate, GET /healthz and GET /readyz over
// TLS on one address, and GET /metrics over plain HTTP on another.
type Server struct {
	Listen          string
	MetricsListen   string // empty: no metrics server
	Handler         http.Handler
	Ready           func() bool // readiness beyond "serving" (a snapshot is loaded)
	Certs           *CertReloader
	Gatherer        prometheus.Gatherer
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// Extra handlers served on Listen beside /validate (e.g. "POST /api/v1/scans").
	Extra map[string]http.Handler
	// ReadyWarnings, when set, are added to a ready /readyz answer, one
	// "warning: " line each: ready, but probably not as meant (no policy
	// names this cluster).
	ReadyWarnings func() []string

	stopping atomic.Bool
}

// Run serves until ctx ends, then stops accepting, reports not ready, and
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
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.Certs.GetCertificate,
			NextProtos:     []string{"h2", "http/1.1"},
		},
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	var msrv *http.Server
	if metricsLn != nil {
		mmux := http.NewServeMux()
		mmux.Handle("GET /metrics", promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}))
		msrv = &http.Server{Handler: mmux, ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- msrv.Serve(metricsLn) }()
	}
	go s.reloadCerts(ctx)
	s.Logger.Info("serving", "listen", ln.Addr().String(), "metrics", addr(metricsLn))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.stopping.Store(true)
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

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.stopping.Load():
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	case s.Ready != nil && !s.Ready():
		http.Error(w, "no policy snapshot loaded", http.StatusServiceUnavailable)
	default:
		_, _ = w.Write([]byte("ok\n"))
		if s.ReadyWarnings != nil {
			for _, msg := range s.ReadyWarnings() {
				_, _ = w.Write([]byte("warning: " + msg + "\n"))
			}
		}
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
