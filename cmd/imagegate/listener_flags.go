package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/imagegate/imagegate/kube"
	"github.com/imagegate/imagegate/webhook"
)

// listenerFlags secure serve's listeners: the TLS profile of every TLS
// listener, client certificates for the routes the API server calls, and
// TLS and a bearer token for /metrics.
type listenerFlags struct {
	tlsProfile        string
	profile           webhook.TLSProfile // tlsProfile, parsed by check
	clientCAFile      string
	requireClientCert bool
	metricsTLS        bool
	metricsTokenFile  string
	http2             bool
}

func (l *listenerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.tlsProfile, "tls-profile", string(webhook.DefaultTLSProfile), "TLS of every listener: modern (TLS 1.3 only) or intermediate (also TLS 1.2 with ECDHE AEAD suites)")
	fs.StringVar(&l.clientCAFile, "client-ca-file", "", "CA bundle (PEM) verifying the API server's client certificate on --listen; reviews that come with one are recorded as authenticated")
	fs.BoolVar(&l.requireClientCert, "require-client-cert", false, "refuse (401) admission reviews without a client certificate from --client-ca-file; probes need none")
	fs.BoolVar(&l.metricsTLS, "metrics-tls", false, "serve /metrics over TLS with the serving certificate")
	fs.BoolVar(&l.http2, "http2", false, "offer HTTP/2 beside HTTP/1.1 on --listen and a TLS --metrics-listen (off: HTTP/2's stream resets and CONTINUATION floods are a denial-of-service surface, and the API server's one HTTP/2 connection would send every review to one replica)")
	fs.StringVar(&l.metricsTokenFile, "metrics-token-file", "", "file holding the bearer token /metrics requires (needs --metrics-tls)")
}

// check validates the flags; it reads no file.
func (l *listenerFlags) check() error {
	p, err := webhook.ParseTLSProfile(l.tlsProfile)
	if err != nil {
		return errors.New("--tls-profile: " + err.Error())
	}
	l.profile = p
	if l.requireClientCert && l.clientCAFile == "" {
		return errors.New("--require-client-cert needs --client-ca-file")
	}
	if l.metricsTokenFile != "" && !l.metricsTLS {
		return errors.New("--metrics-token-file needs --metrics-tls: a bearer token over plain HTTP can be read off the wire")
	}
	return nil
}

// apply sets the listeners' security on srv, reading the files; with
// --require-client-cert it wraps the routes the API server calls.
func (l *listenerFlags) apply(srv *webhook.Server) error {
	srv.TLSProfile, srv.MetricsTLS, srv.HTTP1Only = l.profile, l.metricsTLS, !l.http2
	if l.clientCAFile != "" {
		pool, err := webhook.LoadClientCAs(l.clientCAFile)
		if err != nil {
			return fmt.Errorf("--client-ca-file: %w", err)
		}
		srv.ClientCAs = pool
	}
	if l.requireClientCert {
		srv.Handler = webhook.RequireClientCert(srv.Handler)
		// Every route the API server calls as a webhook.
		for _, path := range []string{kube.ValidationPath, webhook.MutatePath} {
			if h, ok := srv.Extra["POST "+path]; ok {
				srv.Extra["POST "+path] = webhook.RequireClientCert(h)
			}
		}
	}
	if l.metricsTokenFile != "" {
		tf, err := watchTokenFile("--metrics-token-file", l.metricsTokenFile, "metrics", srv.Logger)
		if err != nil {
			return err
		}
		srv.MetricsTokens = tf
	}
	return nil
}

// serveTLS serves h over TLS on listen, with the webhook's limits (an API
// call or a console page, too, is small and quick), until ctx ends; what
// names the server in logs.
func serveTLS(ctx context.Context, log *slog.Logger, listen, what string, h http.Handler, cfg *tls.Config) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:   h,
		ErrorLog:  slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig: cfg,
	}
	webhook.DefaultLimits().Apply(srv)
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(what+" stopped", "error", err.Error())
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving "+what, "listen", ln.Addr().String())
	return nil
}
