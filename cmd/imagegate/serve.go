package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/attestation"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type serveFlags struct {
	policies, clusterID, certFile, keyFile, listen, metricsListen, factsFile string
	onVerificationError, logLevel, ownNamespace                              string
	exempt                                                                   stringList
	maxScanAge, pollInterval, shutdownTimeout, defaultTimeout                time.Duration
	maxInFlight                                                              int
	maxBody                                                                  int64
	verifier                                                                 verifierFlags
}

func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, int) {
	f := &serveFlags{}
	fs := newFlagSet("serve", "serve --policies DIR --cluster-id ID --tls-cert-file F --tls-private-key-file F [flags]", stderr)
	fs.StringVar(&f.policies, "policies", "", "directory of policy objects (watched for changes)")
	fs.StringVar(&f.clusterID, "cluster-id", "", "this cluster's id, as policies and strategies name it")
	fs.StringVar(&f.certFile, "tls-cert-file", "", "serving certificate (PEM); reloaded when it changes")
	fs.StringVar(&f.keyFile, "tls-private-key-file", "", "serving key (PEM); reloaded when it changes")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8443", "address for /validate, /healthz and /readyz (TLS)")
	fs.StringVar(&f.metricsListen, "metrics-listen", "127.0.0.1:9090", "address for /metrics (plain HTTP); empty disables it")
	fs.StringVar(&f.factsFile, "facts", "", "static facts file (YAML/JSON), as imagegate check --facts; without it signatures are verified live")
	fs.StringVar(&f.onVerificationError, "on-verification-error", "deny", "when signatures cannot be checked or a decision cannot finish in time: deny or allow")
	fs.StringVar(&f.ownNamespace, "namespace", envOr("POD_NAMESPACE", "imagegate"), "imagegate's own namespace (exempt)")
	fs.Var(&f.exempt, "exempt-namespaces", "namespaces admitted without a decision (repeatable or comma-separated; default kube-system and --namespace)")
	fs.DurationVar(&f.maxScanAge, "max-scan-age", 0, "scan results older than this count as unscanned (0: never)")
	fs.DurationVar(&f.pollInterval, "policy-poll-interval", 2*time.Second, "how often to look for policy changes")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long to drain requests in flight on SIGTERM")
	fs.DurationVar(&f.defaultTimeout, "default-timeout", webhook.DefaultTimeout, "decision budget when the API server sends no timeout")
	fs.IntVar(&f.maxInFlight, "max-in-flight", webhook.DefaultMaxInFlight, "concurrent decisions; more wait within their deadline")
	fs.Int64Var(&f.maxBody, "max-body-bytes", webhook.DefaultMaxBodyBytes, "largest AdmissionReview accepted")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	f.verifier.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, flagError(err)
	}
	var missing []string
	for name, v := range map[string]string{"--policies": f.policies, "--cluster-id": f.clusterID, "--tls-cert-file": f.certFile, "--tls-private-key-file": f.keyFile} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 || fs.NArg() > 0 || (f.onVerificationError != "deny" && f.onVerificationError != "allow") {
		switch {
		case len(missing) > 0:
			fmt.Fprintf(stderr, "imagegate serve: required: %s\n", strings.Join(slices.Sorted(slices.Values(missing)), ", "))
		case fs.NArg() > 0:
			fmt.Fprintf(stderr, "imagegate serve: unexpected arguments %q\n", fs.Args())
		default:
			fmt.Fprintf(stderr, "imagegate serve: --on-verification-error %q: expected deny or allow\n", f.onVerificationError)
		}
		return nil, exitBadUsage
	}
	if len(f.exempt) == 0 {
		f.exempt = append(stringList{}, append(webhook.DefaultExemptNamespaces, f.ownNamespace)...)
	}
	return f, exitOK
}

func runServe(ctx context.Context, args []string, stderr io.Writer) int {
	f, code := parseServeFlags(args, stderr)
	if f == nil {
		return code
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		fmt.Fprintf(stderr, "imagegate serve: --log-level: %v\n", err)
		return exitBadUsage
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var source facts.Source
	if f.factsFile != "" {
		ff, err := facts.LoadFile(f.factsFile)
		if err != nil {
			fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
			return exitBadUsage
		}
		source = ff
	} else {
		v, err := f.verifier.build(reg)
		if err != nil {
			fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
			return exitBadUsage
		}
		source = attestation.NewSource(v, nil)
	}
	certs, err := webhook.NewCertReloader(f.certFile, f.keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	failOpen := f.onVerificationError == "allow"
	engines := &admission.Engines{}
	loads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "imagegate_policy_loads_total", Help: "Policy snapshot loads by result (ok, error).",
	}, []string{"result"})
	reg.MustRegister(loads)
	go policy.Watch(ctx, f.policies, f.pollInterval, func(snap *policy.Snapshot, err error) {
		if err == nil {
			var e *rego.Engine
			e, err = rego.New(ctx, snap, rego.WithClusterID(f.clusterID), rego.WithMaxScanAge(f.maxScanAge), rego.WithVerificationErrorsAllowed(failOpen))
			if err == nil {
				engines.Swap(e)
				loads.WithLabelValues("ok").Inc()
				log.Info("policy snapshot loaded", "digest", snap.Digest(), "attestors", len(snap.Attestors()),
					"policies", len(snap.Policies()), "strategies", len(snap.Strategies()))
				return
			}
		}
		loads.WithLabelValues("error").Inc()
		log.Error("policy snapshot rejected; the last good one stays in force", "dir", f.policies, "error", err.Error())
	})
	handler, err := webhook.NewHandler(admission.NewDecider(engines, source),
		webhook.WithExemptNamespaces(f.exempt...), webhook.WithDefaultTimeout(f.defaultTimeout),
		webhook.WithMaxInFlight(f.maxInFlight), webhook.WithMaxBodyBytes(f.maxBody),
		webhook.WithFailOpen(failOpen), webhook.WithLogger(log), webhook.WithRegisterer(reg))
	if err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	srv := &webhook.Server{
		Listen: f.listen, MetricsListen: f.metricsListen, Handler: handler, Ready: engines.Ready,
		Certs: certs, Gatherer: reg, ShutdownTimeout: f.shutdownTimeout, Logger: log,
	}
	if err := srv.Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("server stopped", "error", err.Error())
		return exitDenied
	}
	return exitOK
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
