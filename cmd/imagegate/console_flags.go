package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/check"
	"github.com/imagegate/imagegate/console"
	"github.com/imagegate/imagegate/webhook"
	"github.com/prometheus/client_golang/prometheus"
)

// consoleFlags are serve's web console flags (docs/console.md).
type consoleFlags struct {
	listen         string
	maxLogins      int
	idle, lifetime time.Duration
	maxCheckBytes  int64
	checkTimeout   time.Duration
	loginsPerUser  int
}

func (f *consoleFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "console-listen", "", "address for the web console (TLS, the serving certificate; sign-in with management API tokens, needs --api-listen); empty disables it")
	fs.IntVar(&f.maxLogins, "console-max-logins", console.DefaultMaxLogins, "console logins open at once; sign-ins past it are refused until one ends")
	fs.IntVar(&f.loginsPerUser, "console-logins-per-user", console.DefaultLoginsPerPrincipal, "console logins of one principal; a new one ends its oldest")
	fs.DurationVar(&f.idle, "console-login-idle", console.DefaultIdleTimeout, "a console login unused this long ends")
	fs.DurationVar(&f.lifetime, "console-login-lifetime", console.DefaultLoginLifetime, "a console login ends this long after sign-in, however used")
	fs.Int64Var(&f.maxCheckBytes, "console-max-check-bytes", console.DefaultMaxCheckBytes, "largest manifest the console's check box decides")
	fs.DurationVar(&f.checkTimeout, "console-check-timeout", 10*time.Second, "time allowed to decide one workload of a pasted manifest (signatures verified live)")
}

// check reports flag combinations that cannot work.
func (f *consoleFlags) check(api *apiFlags) error {
	switch {
	case f.listen != "" && api.listen == "":
		return errors.New("--console-listen needs --api-listen: the console signs in with the management API's tokens and policies")
	case f.maxLogins < 1 || f.loginsPerUser < 1:
		return errors.New("--console-max-logins and --console-logins-per-user must be at least 1")
	case f.idle <= 0 || f.lifetime <= 0 || f.checkTimeout <= 0:
		return errors.New("--console-login-idle, --console-login-lifetime and --console-check-timeout must be positive")
	case f.maxCheckBytes < 1:
		return errors.New("--console-max-check-bytes must be positive")
	}
	return nil
}

// start serves the console on its own listener until ctx ends; nothing
// when --console-listen is empty. The API must have started (f.api.handler).
func (f *consoleFlags) start(ctx context.Context, sf *serveFlags, decider *admission.Decider, reg prometheus.Gatherer, certs *webhook.CertReloader, log *slog.Logger) error {
	if f.listen == "" {
		return nil
	}
	if sf.api.handler == nil {
		return errors.New("--console-listen: the management API did not start")
	}
	log = log.With("component", "console")
	opts := []console.Option{console.WithLogger(log), console.WithCounters(auditCounters(reg)),
		console.WithLoginLimits(f.maxLogins, f.loginsPerUser, f.idle, f.lifetime), console.WithMaxCheckBytes(f.maxCheckBytes),
		console.WithChecker(&console.ManifestChecker{Checker: &check.Checker{Decider: decider, Timeout: f.checkTimeout}})}
	if es, ok := sf.audit.events.(console.Events); ok {
		opts = append(opts, console.WithEvents(es))
	} else {
		log.Warn("no --audit-store: the console's overview and events views are off")
	}
	h, err := console.New(sf.api.handler, opts...)
	if err != nil {
		return err
	}
	return serveTLS(ctx, log, f.listen, "the web console", h, webhook.ServerTLSConfig(sf.listener.profile, certs))
}

// auditCounters reads the audit pipeline's drop and error counters from
// serve's own metrics, so the overview shows what /metrics shows.
func auditCounters(reg prometheus.Gatherer) func() map[string]float64 {
	return func() map[string]float64 {
		out := map[string]float64{}
		mfs, err := reg.Gather()
		if err != nil {
			return out
		}
		for _, mf := range mfs {
			name := mf.GetName()
			if !strings.HasPrefix(name, "imagegate_audit_") || !(strings.Contains(name, "dropped") || strings.Contains(name, "error")) {
				continue
			}
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
			out[name] = sum
		}
		return out
	}
}
