package main

import (
	"errors"
	"flag"

	"github.com/imagegate/imagegate/webhook"
)

// listenerFlags secure serve's listeners: the TLS profile of every TLS
// listener, and TLS and a bearer token for /metrics.
type listenerFlags struct {
	tlsProfile       string
	profile          webhook.TLSProfile // tlsProfile, parsed by check
	metricsTLS       bool
	metricsTokenFile string
}

func (l *listenerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.tlsProfile, "tls-profile", string(webhook.DefaultTLSProfile), "TLS of every listener: modern (TLS 1.3 only) or intermediate (also TLS 1.2 with ECDHE AEAD suites)")
	fs.BoolVar(&l.metricsTLS, "metrics-tls", false, "serve /metrics over TLS with the serving certificate")
	fs.StringVar(&l.metricsTokenFile, "metrics-token-file", "", "file holding the bearer token /metrics requires (needs --metrics-tls)")
}

// check validates the flags; it reads no file.
func (l *listenerFlags) check() error {
	p, err := webhook.ParseTLSProfile(l.tlsProfile)
	if err != nil {
		return errors.New("--tls-profile: " + err.Error())
	}
	l.profile = p
	if l.metricsTokenFile != "" && !l.metricsTLS {
		return errors.New("--metrics-token-file needs --metrics-tls: a bearer token over plain HTTP can be read off the wire")
	}
	return nil
}

// apply sets the listeners' security on srv, reading the token file.
func (l *listenerFlags) apply(srv *webhook.Server) error {
	srv.TLSProfile, srv.MetricsTLS = l.profile, l.metricsTLS
	if l.metricsTokenFile != "" {
		token, err := readToken("--metrics-token-file", l.metricsTokenFile)
		if err != nil {
			return err
		}
		srv.MetricsToken = token
	}
	return nil
}
