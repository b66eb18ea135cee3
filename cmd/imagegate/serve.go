package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/internal/version"
	"github.com/imagegate/imagegate/pgstore"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/scan"
	"github.com/imagegate/imagegate/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type serveFlags struct {
	policies, clusterID, certFile, keyFile, listen, metricsListen, factsFile string
	onVerificationError, logLevel, ownNamespace                              string
	exempt                                                                   stringList
	maxScanAge, pollInterval, shutdownTimeout, shutdownDelay, defaultTimeout time.Duration
	maxInFlight, maxImages                                                   int
	allowEmpty                                                               bool
	maxBody                                                                  int64
	verifier                                                                 verifierFlags
	pprof                                                                    pprofFlags
	store, scanStore, scanTokenFile                                          string
	scanMaxBytes                                                             int64
	api                                                                      apiFlags
	audit                                                                    auditFlags
	kube                                                                     kubeFlags
	pin                                                                      pinFlags
	listener                                                                 listenerFlags
	console                                                                  consoleFlags
	runtime                                                                  runtimeFlags
	bundle                                                                   bundleFlags
}

func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, int) {
	f := &serveFlags{}
	fs := newFlagSet("serve", "serve (--policies DIR | --policy-source=kube [--kubeconfig F] | --policy-source=oci://REF --policy-key F) --cluster-id ID --tls-cert-file F --tls-private-key-file F [flags]", stderr)
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
	fs.DurationVar(&f.pollInterval, "policy-poll-interval", 2*time.Second, "how often to look for policy changes (a policy bundle, oci://: 30s unless given)")
	fs.BoolVar(&f.allowEmpty, "allow-empty-policies", false, "let a policy set without BinarySecurityPolicy and OpaStrategy replace one with them (otherwise refused: the last good set stays)")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long to drain requests in flight on SIGTERM")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 2*time.Second, "on SIGTERM, how long to go on answering, each answer closing its kept-alive connection, before closing the listener and idle connections (ends early when none is left open)")
	fs.DurationVar(&f.defaultTimeout, "default-timeout", webhook.DefaultTimeout, "decision budget when the API server sends no timeout")
	fs.IntVar(&f.maxInFlight, "max-in-flight", webhook.DefaultMaxInFlight, "concurrent decisions; more wait within their deadline")
	fs.IntVar(&f.maxImages, "max-images-per-request", webhook.DefaultMaxImages, "distinct images a workload may have; one with more is denied")
	fs.Int64Var(&f.maxBody, "max-body-bytes", webhook.DefaultMaxBodyBytes, "largest AdmissionReview accepted")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	f.verifier.register(fs)
	fs.StringVar(&f.store, "store", "", "PostgreSQL URL (postgres://…) for both --scan-store and --audit-store: state shared by every replica")
	fs.StringVar(&f.scanStore, "scan-store", "", "scan store to take scan facts from: a file, or a postgres:// URL shared by replicas; new imports are seen without restart")
	fs.StringVar(&f.scanTokenFile, "scan-token-file", "", "file holding the bearer token for POST /api/v1/scans (needs --scan-store)")
	fs.Int64Var(&f.scanMaxBytes, "scan-max-bytes", 64<<20, "largest report POST /api/v1/scans accepts")
	f.api.register(fs)
	f.audit.register(fs)
	f.kube.register(fs)
	f.pin.register(fs)
	f.listener.register(fs)
	f.console.register(fs)
	f.runtime.register(fs)
	f.bundle.register(fs)
	f.pprof.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, flagError(err)
	}
	f.kube.runtime = f.runtime.on
	var missing []string
	if f.store != "" {
		if !pgstore.IsURL(f.store) {
			fmt.Fprintln(stderr, "imagegate serve: --store takes a postgres:// URL (for files: --scan-store and --audit-store)")
			return nil, exitBadUsage
		}
		f.scanStore = cmp.Or(f.scanStore, f.store)
		f.audit.store = cmp.Or(f.audit.store, f.store)
	}
	if msg := cmp.Or(f.kube.resolve(f.policies, f.scanStore), f.bundle.resolve(fs, f.kube.source, f.pollInterval)); msg != "" {
		fmt.Fprintf(stderr, "imagegate serve: %s\n", msg)
		return nil, exitBadUsage
	}
	for name, v := range map[string]string{"--cluster-id": f.clusterID, "--tls-cert-file": f.certFile, "--tls-private-key-file": f.keyFile} {
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
	if err := errors.Join(f.api.check(), f.audit.validate(), f.listener.check(), f.runtime.check(), f.console.check(&f.api)); err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
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
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), version.Collector())
	build := version.Get()
	log.Info("imagegate starting", "version", build.Version, "revision", build.Revision, "go", build.GoVersion)
	warnings := newPolicyWarnings(reg)
	if err := f.pprof.start(ctx, log); err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}

	kubeClient, err := f.kube.connect(f.factsFile == "")
	if err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	sourceOpts, keychains := f.kube.pullSecretOptions(ctx, kubeClient, log, f.factsFile == "")
	st := newStores(log, reg)
	defer st.close()
	source, scans, scanStore, verifier, err := factsSource(ctx, f.factsFile, f.scanStore, st, &f.verifier, reg, sourceOpts...)
	if err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	extra := map[string]http.Handler{}
	if scans != nil {
		go scans.Watch(ctx, f.pollInterval, func(err error) { log.Warn("scan store not refreshed", "error", err.Error()) })
		if err := f.kube.startReports(ctx, kubeClient, log, scanStore, scans); err != nil {
			fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
			return exitBadUsage
		}
		if f.scanTokenFile != "" {
			tokens, err := watchTokenFile("--scan-token-file", f.scanTokenFile, scan.TokenPrincipal, log)
			if err != nil {
				fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
				return exitBadUsage
			}
			h := &scan.Handler{Store: scanStore, Tokens: tokens, MaxBytes: f.scanMaxBytes,
				Now: time.Now, OnImport: func() { _, _ = scans.Refresh() }, Audit: f.audit.recordScanCall}
			extra[scan.RouteImport], extra[scan.RouteClearMalicious] = h, h
		}
	} else if f.scanTokenFile != "" {
		fmt.Fprintln(stderr, "imagegate serve: --scan-token-file needs --scan-store")
		return exitBadUsage
	}
	if err := f.kube.bootstrapCerts(ctx, kubeClient, log, f.ownNamespace, f.certFile, f.keyFile); err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	certs, err := webhook.NewCertReloader(f.certFile, f.keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	reg.MustRegister(webhook.CertExpiryCollector(certs))
	failOpen := f.onVerificationError == "allow"
	engines := &admission.Engines{}
	policyStats := newPolicyMetrics(reg)
	reloads := newReloadCounter(reg, f.kube.source)
	// Both policy sources load through here, so one guard covers both.
	guard := policy.NewEmptyGuard(f.allowEmpty)
	onLoad := func(snap *policy.Snapshot, err error) {
		empty := false
		if err == nil {
			if err = guard.Check(snap); err != nil {
				empty = true
				err = fmt.Errorf("%w (deleted by mistake? restore the policies; on purpose: serve --allow-empty-policies)", err)
			}
		}
		if err == nil {
			var e *rego.Engine
			e, err = rego.New(ctx, snap, rego.WithClusterID(f.clusterID), rego.WithMaxScanAge(f.maxScanAge), rego.WithVerificationErrorsAllowed(failOpen))
			if err == nil {
				for _, name := range f.verifier.scanAttestors {
					if _, ok := snap.Attestor(name); !ok {
						log.Warn("--scan-attestors names no Attestor of this snapshot; its attestations are ignored", "attestor", name)
					}
				}
				engines.Swap(e)
				guard.Loaded(snap)
				policyStats.loaded()
				reloads.observe(nil)
				log.Info("policy snapshot loaded", "digest", snap.Digest(), "attestors", len(snap.Attestors()),
					"policies", len(snap.Policies()), "strategies", len(snap.Strategies()))
				if !snap.Enforces() && !f.allowEmpty {
					log.Warn("no BinarySecurityPolicy or OpaStrategy loaded: every image is admitted")
				}
				warnings.update(snap, f.clusterID, log)
				return
			}
		}
		policyStats.failed(empty)
		reloads.observe(err)
		log.Error("policy snapshot rejected; the last good one stays in force", "source", f.kube.source, "dir", f.policies, "error", err.Error())
	}
	kubeSource, err := f.kube.start(ctx, kubeClient, log, onLoad, extra)
	if err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	if bundleSource, err := f.bundle.start(ctx, f.kube.source, &f.verifier, log, onLoad); err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	} else if !kubeSource && !bundleSource {
		go policy.Watch(ctx, f.policies, f.pollInterval, onLoad)
	}
	auditOpts, stopAudit, err := f.audit.start(ctx, f.clusterID, log, reg, extra, st)
	if err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	defer stopAudit()
	// After the audit pipeline, so that API calls are audit events too.
	if err := f.api.start(ctx, f, kubeClient, certs, log); err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	limits := []webhook.Option{webhook.WithExemptNamespaces(f.exempt...), webhook.WithDefaultTimeout(f.defaultTimeout),
		webhook.WithMaxInFlight(f.maxInFlight), webhook.WithMaxBodyBytes(f.maxBody), webhook.WithLogger(log), webhook.WithRegisterer(reg)}
	decider := admission.NewDecider(engines, source, admission.WithScanAttestors(f.verifier.scanAttestors...))
	if err := f.console.start(ctx, f, decider, reg, certs, log); err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	handler, err := webhook.NewHandler(decider,
		slices.Concat(limits, []webhook.Option{webhook.WithFailOpen(failOpen), webhook.WithMaxImages(f.maxImages)}, auditOpts)...)
	if err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	mutator, err := f.pin.mutator(verifier, keychains, limits...)
	if err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	extra["POST "+webhook.MutatePath] = mutator
	stopRuntime, err := f.runtime.start(ctx, runtimeDeps{kubeconfig: f.kube.kubeconfig, namespace: f.ownNamespace, engines: engines, source: source,
		scanAttestors: f.verifier.scanAttestors, scans: scans, exempt: f.exempt, maxScanAge: f.maxScanAge, recorder: f.audit.recorder,
		auditTokenFile: f.audit.tokenFile, log: log, reg: reg, extra: extra})
	if err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
	}
	defer stopRuntime()
	srv := &webhook.Server{
		Listen: f.listen, MetricsListen: f.metricsListen, Handler: handler, Ready: engines.Ready, ReadyDetail: guard.Status,
		ReadyWarnings: func() []string {
			// The scan store away: admissions go on from the facts last
			// read, so the replica stays ready, and says so.
			w := warnings.get()
			if s := f.bundle.status(); s != "" {
				w = append(w, s)
			}
			if scans != nil {
				if s := scans.Status(); s != "" {
					w = append(w, s)
				}
			}
			return w
		},
		Certs: certs, Gatherer: reg, ShutdownTimeout: f.shutdownTimeout, ShutdownDelay: f.shutdownDelay, Logger: log, Extra: extra,
	}
	if err := f.listener.apply(srv); err != nil {
		fmt.Fprintf(stderr, "imagegate serve: %v\n", err)
		return exitBadUsage
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
