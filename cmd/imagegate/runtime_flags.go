package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/compliance"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/inventory"
	"github.com/imagegate/imagegate/scan"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// runtimeFlags turn on continuous compliance: running workloads decided
// again when what they were decided on changes (docs/runtime.md).
type runtimeFlags struct {
	on          bool
	action      string
	concurrency int
	resync      time.Duration
	reports     bool
	events      bool
	eventsQPS   float64
	lease       string
	tokenFile   string
}

func (r *runtimeFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&r.on, "runtime-compliance", false, "watch the cluster's pods (--kubeconfig, or in-cluster) and decide them again whenever policies, attestors, scans, the malicious feed or --max-scan-age change their verdict; reports only")
	fs.StringVar(&r.action, "runtime-action", "none", "what to do to a running workload that breaks a policy: none (report only) or annotate (write imagegate.dev/runtime-violation on its pods)")
	fs.IntVar(&r.concurrency, "runtime-concurrency", compliance.DefaultConcurrency, "running workloads decided at once (admissions come first: keep below the cores)")
	fs.DurationVar(&r.resync, "runtime-resync", compliance.DefaultResync, "decide every running workload again this often, for changes nothing announces (signatures pushed to or deleted from a registry); 0: never")
	fs.BoolVar(&r.reports, "runtime-policy-reports", true, "keep a PolicyReport named imagegate-runtime per namespace with its running workloads' violations (--runtime-compliance)")
	fs.BoolVar(&r.events, "runtime-kube-events", true, "write a Kubernetes Event on the owning controller when a running workload starts or stops breaking a policy (--runtime-compliance)")
	fs.Float64Var(&r.eventsQPS, "runtime-kube-events-qps", 10, "runtime Events written per second at most (bursts of 10×); more wait, one per workload, the newest winning")
	fs.StringVar(&r.lease, "runtime-lease", "imagegate-runtime", "Lease in --namespace electing the replica that reports (every replica decides); empty: this replica always reports")
	fs.StringVar(&r.tokenFile, "runtime-token-file", "", "file holding the bearer token for GET /api/v1/workloads (default: --audit-token-file's)")
}

func (r *runtimeFlags) check() error {
	switch {
	case !r.on:
		return nil
	case r.action != "none" && r.action != "annotate":
		return fmt.Errorf("--runtime-action %q: expected none or annotate", r.action)
	case r.concurrency <= 0:
		return fmt.Errorf("--runtime-concurrency %d: expected a positive number", r.concurrency)
	case r.resync < 0:
		return fmt.Errorf("--runtime-resync %s: expected 0 or a positive duration", r.resync)
	case r.eventsQPS <= 0:
		return fmt.Errorf("--runtime-kube-events-qps %v: expected a positive number", r.eventsQPS)
	}
	return nil
}

// runtimeDeps is what the monitor shares with admission.
type runtimeDeps struct {
	kubeconfig, namespace string
	engines               *admission.Engines
	source                facts.Source
	scanAttestors         []string
	scans                 *scan.Reader
	exempt                []string
	maxScanAge            time.Duration
	recorder              *audit.Recorder
	auditTokenFile        string
	log                   *slog.Logger
	reg                   prometheus.Registerer
	extra                 map[string]http.Handler
}

// start runs the inventory, the monitor and its sinks, and mounts GET
// /api/v1/workloads when a token file is known. serve calls the returned
// function on its way out: it waits for the Lease to be released.
func (r *runtimeFlags) start(ctx context.Context, d runtimeDeps) (func(), error) {
	stop := func() {}
	if !r.on {
		return stop, nil
	}
	cfg, err := restConfig("--kubeconfig", d.kubeconfig, "imagegate-runtime")
	if err != nil {
		return stop, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return stop, fmt.Errorf("--kubeconfig: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return stop, fmt.Errorf("--kubeconfig: %w", err)
	}
	leader := func() bool { return true }
	if r.lease != "" {
		host, _ := os.Hostname()
		l, err := compliance.NewLease(ctx, client, d.namespace, r.lease, host+"-"+strconv.Itoa(os.Getpid()), d.log)
		if err != nil {
			return stop, fmt.Errorf("--runtime-lease: %w", err)
		}
		leader = l.Leader
		stop = func() { l.Wait(5 * time.Second) }
	}
	var mon *compliance.Monitor
	inv, err := inventory.New(client, inventory.WithExcludedNamespaces(d.exempt...), inventory.WithOnChange(func(k inventory.Key) { mon.PodChanged(k) }))
	if err != nil {
		return stop, err
	}
	var sinks []compliance.Sink
	var run []func(context.Context)
	opts := []compliance.Option{compliance.WithLogger(d.log), compliance.WithRegisterer(d.reg), compliance.WithMaxScanAge(d.maxScanAge),
		compliance.WithConcurrency(r.concurrency), compliance.WithResync(r.resync), compliance.WithLeader(leader),
		compliance.WithExemptNamespaces(d.exempt...)}
	dec := admission.NewDecider(d.engines, d.source, admission.WithScanAttestors(d.scanAttestors...))
	mon, err = compliance.New(inv, dec, d.engines, opts...)
	if err != nil {
		return stop, err
	}
	if r.reports {
		w := compliance.NewReportWriter(dyn, mon, d.log)
		sinks, run = append(sinks, w), append(run, w.Run)
	}
	if r.events {
		w := compliance.NewEventWriter(client, d.log, r.eventsQPS, int(10*r.eventsQPS))
		sinks, run = append(sinks, w), append(run, w.Run)
	}
	if d.recorder != nil {
		sinks = append(sinks, compliance.AuditSink{Recorder: d.recorder})
	}
	if r.action == "annotate" {
		sinks = append(sinks, compliance.NewAnnotator(client, d.log))
	}
	mon.AddSinks(sinks...)
	if d.scans != nil {
		d.scans.OnChange(mon.ScanChanged)
	}
	if tf := cmp.Or(r.tokenFile, d.auditTokenFile); tf != "" {
		flagName := "--runtime-token-file"
		if r.tokenFile == "" {
			flagName = "--audit-token-file"
		}
		tokens, err := watchTokenFile(flagName, tf, "runtime-token", d.log)
		if err != nil {
			return stop, err
		}
		d.extra[compliance.RouteWorkloads] = &compliance.Handler{Monitor: mon, Tokens: tokens}
	}
	for _, fn := range run {
		go fn(ctx)
	}
	inv.Start(ctx)
	go func() {
		if !inv.WaitSynced(ctx) {
			return
		}
		d.log.Info("runtime compliance: inventory synced", "pods", inv.Len())
		if err := mon.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("runtime compliance stopped", "error", err.Error())
		}
	}()
	return stop, nil
}
