package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/imagegate/imagegate/api"
	"github.com/imagegate/imagegate/webhook"
)

// apiFlags are serve's management API flags.
type apiFlags struct {
	listen, tokens, state string
	maxBody               int64
}

func (f *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "api-listen", "", "address for the management API (TLS, the serving certificate); empty disables it")
	fs.StringVar(&f.tokens, "api-tokens", "", "CSV file of API bearer tokens: token,principal,group1|group2 (needs --api-listen)")
	fs.StringVar(&f.state, "api-state", "", "file holding IAM state: control, custom and trust policies, agencies, attachments (needs --api-listen)")
	fs.Int64Var(&f.maxBody, "api-max-body-bytes", api.DefaultMaxBodyBytes, "largest management API request body")
}

// check reports flag combinations that cannot work.
func (f *apiFlags) check() error {
	switch {
	case f.listen == "" && (f.tokens != "" || f.state != ""):
		return errors.New("--api-tokens and --api-state need --api-listen")
	case f.listen != "" && (f.tokens == "" || f.state == ""):
		return errors.New("--api-listen needs --api-tokens and --api-state")
	}
	return nil
}

// start serves the management API on its own listener until ctx ends;
// nothing when --api-listen is empty. Policy object writes go to the
// directory the webhook watches, so they govern the next admission once
// the watcher has seen them.
func (f *apiFlags) start(ctx context.Context, policies string, certs *webhook.CertReloader, log *slog.Logger) error {
	if f.listen == "" {
		return nil
	}
	tokens, err := api.LoadTokens(f.tokens)
	if err != nil {
		return err
	}
	h, err := api.NewHandler(&api.DirStore{Dir: policies}, tokens, f.state,
		api.WithLogger(log.With("component", "api")), api.WithMaxBodyBytes(f.maxBody))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate, NextProtos: []string{"h2", "http/1.1"}},
	}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("management API stopped", "error", err.Error())
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving the management API", "listen", ln.Addr().String())
	return nil
}
