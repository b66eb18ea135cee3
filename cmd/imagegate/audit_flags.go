package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/pgstore"
	"github.com/imagegate/imagegate/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// auditFlags are serve's audit flags (docs/audit.md).
type auditFlags struct {
	log, store, tokenFile string
	kubeconfig            string
	kubeEvents, reports   bool
	sync                  bool
	maxSize               int64
	maxBackups, queueSize int
	retention, pruneEvery time.Duration
	// recorder is set by start when there are sinks; the management API
	// records its calls through it (api_audit.go).
	recorder *audit.Recorder
	// events is the --audit-store once started: the console reads it.
	events audit.EventStore
}

func (f *auditFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.log, "audit-log", "", "write audit events as JSON lines to FILE, or - for stdout")
	fs.Int64Var(&f.maxSize, "audit-log-max-size", 100<<20, "rotate --audit-log FILE before it grows past this many bytes (0: never)")
	fs.IntVar(&f.maxBackups, "audit-log-max-backups", 5, "rotated audit log files to keep (0: all)")
	fs.StringVar(&f.store, "audit-store", "", "keep audit events in this store (a file, or a postgres:// URL shared by replicas and clusters), for imagegate events and GET /api/v1/events")
	fs.DurationVar(&f.retention, "audit-retention", audit.DefaultRetention, "how long --audit-store keeps events")
	fs.DurationVar(&f.pruneEvery, "audit-prune-interval", time.Hour, "how often --audit-store drops events past --audit-retention")
	fs.StringVar(&f.tokenFile, "audit-token-file", "", "file holding the bearer token for GET /api/v1/events (needs --audit-store)")
	fs.BoolVar(&f.kubeEvents, "audit-kube-events", false, "write audit events as Kubernetes Events on the involved objects (aggregated, rate-limited)")
	fs.BoolVar(&f.reports, "audit-policy-reports", false, "keep a PolicyReport (wgpolicyk8s.io/v1alpha2) named imagegate per namespace with recent audit events")
	fs.StringVar(&f.kubeconfig, "audit-kubeconfig", "", "kubeconfig for --audit-kube-events and --audit-policy-reports (default: in-cluster)")
	fs.BoolVar(&f.sync, "audit-sync", false, "commit each admission's audit event to --audit-log/--audit-store before answering (no loss on a crash; costs each notable admission one store write)")
	fs.IntVar(&f.queueSize, "audit-queue-size", audit.DefaultQueueSize, "audit events waiting for the sinks; beyond it they are dropped and counted")
}

func (f *auditFlags) validate() error {
	switch {
	case f.maxSize < 0:
		return fmt.Errorf("--audit-log-max-size %d: expected 0 or more bytes", f.maxSize)
	case f.maxBackups < 0:
		return fmt.Errorf("--audit-log-max-backups %d: expected 0 or more", f.maxBackups)
	case f.retention <= 0:
		return fmt.Errorf("--audit-retention %s: expected a positive duration", f.retention)
	case f.pruneEvery <= 0:
		return fmt.Errorf("--audit-prune-interval %s: expected a positive duration", f.pruneEvery)
	case f.queueSize <= 0:
		return fmt.Errorf("--audit-queue-size %d: expected a positive number", f.queueSize)
	case f.kubeconfig != "" && !f.kubeEvents && !f.reports:
		return errors.New("--audit-kubeconfig needs --audit-kube-events or --audit-policy-reports")
	case f.tokenFile != "" && f.store == "":
		return errors.New("--audit-token-file needs --audit-store")
	case f.sync && f.store == "" && f.log == "":
		return errors.New("--audit-sync needs --audit-store or --audit-log")
	case f.sync && pgstore.IsURL(f.store) && f.log == "":
		return errors.New("--audit-sync waits for files only: with a PostgreSQL --audit-store (written in batches) it needs --audit-log")
	}
	return nil
}

// start builds the sinks and the recorder, mounts GET /api/v1/events on
// extra, and returns the webhook option (none without sinks) and a stop
// function that flushes queued events. The flags are validated already
// (parseServeFlags), before serve touches the cluster.
func (f *auditFlags) start(ctx context.Context, clusterID string, log *slog.Logger, reg prometheus.Registerer, extra map[string]http.Handler, st *stores) ([]webhook.Option, func(), error) {
	var sinks []audit.Sink
	switch f.log {
	case "":
	case "-":
		sinks = append(sinks, audit.NewWriterSink(os.Stdout))
	default:
		s, err := audit.NewFileSink(f.log, f.maxSize, f.maxBackups)
		if err != nil {
			return nil, nil, fmt.Errorf("--audit-log: %w", err)
		}
		sinks = append(sinks, s)
	}
	if f.store != "" {
		es, err := st.audit(ctx, f.store)
		if err != nil {
			return nil, nil, fmt.Errorf("--audit-store: %w", err)
		}
		sinks = append(sinks, es)
		f.events = es
		go es.RunRetention(ctx, f.retention, f.pruneEvery, log)
		if f.tokenFile != "" {
			tokens, err := watchTokenFile("--audit-token-file", f.tokenFile, "audit-token", log)
			if err != nil {
				return nil, nil, err
			}
			extra["GET /api/v1/events"] = &audit.Handler{Store: es, Tokens: tokens, Now: time.Now}
		}
	}
	if f.kubeEvents || f.reports {
		kube, err := f.kubeSinks()
		if err != nil {
			return nil, nil, err
		}
		sinks = append(sinks, kube...)
	}
	if len(sinks) == 0 {
		return nil, func() {}, nil
	}
	opts := []audit.Option{audit.WithQueueSize(f.queueSize), audit.WithClusterID(clusterID), audit.WithLogger(log), audit.WithRegisterer(reg)}
	if f.sync {
		opts = append(opts, audit.WithSync(audit.DefaultSyncTimeout))
	}
	rec, err := audit.NewRecorder(sinks, opts...)
	if err != nil {
		return nil, nil, err
	}
	f.recorder = rec
	stop := func() {
		if err := rec.Close(); err != nil {
			log.Warn("audit sinks not closed cleanly", "error", err.Error())
		}
	}
	return []webhook.Option{webhook.WithAuditor(rec)}, stop, nil
}

// kubeSinks connects to the cluster the audit events go to.
func (f *auditFlags) kubeSinks() ([]audit.Sink, error) {
	cfg, err := restConfig("--audit-kubeconfig", f.kubeconfig, "imagegate-audit")
	if err != nil {
		return nil, err
	}
	var sinks []audit.Sink
	if f.kubeEvents {
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("--audit-kubeconfig: %w", err)
		}
		sinks = append(sinks, audit.NewEventSink(c))
	}
	if f.reports {
		c, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("--audit-kubeconfig: %w", err)
		}
		sinks = append(sinks, audit.NewReportSink(c))
	}
	return sinks, nil
}
