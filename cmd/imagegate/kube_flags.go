package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/imagegate/imagegate/bundle"
	"github.com/imagegate/imagegate/kube"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/scan"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeFlags select the Kubernetes policy source of imagegate serve.
type kubeFlags struct {
	source, kubeconfig string
	writeStatus        bool
	vulnReports        bool
	pullSecrets        bool
	certSecret         string
	certWebhook        string
	certMutatingHook   string
	certHosts          stringList
	certValidity       time.Duration
	certRenewBefore    time.Duration
	// runtime is --runtime-compliance, which talks to the cluster too.
	runtime bool
}

func (k *kubeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.source, "policy-source", "", "where policies come from: file (--policies DIR), kube (the cluster's imagegate.dev resources) or oci://REGISTRY/REPOSITORY:TAG (a signed policy bundle, see --policy-key); default kube when --kubeconfig is set without --policies, else file")
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig file for --policy-source=kube; empty: in-cluster configuration")
	fs.BoolVar(&k.writeStatus, "kube-write-status", true, "write Accepted/Invalid conditions to the policy resources' status (--policy-source=kube)")
	fs.BoolVar(&k.vulnReports, "kube-vulnerability-reports", false, "import the cluster's trivy-operator VulnerabilityReports into --scan-store as they appear")
	fs.BoolVar(&k.pullSecrets, "kube-pull-secrets", true, "when imagegate talks to a cluster (--policy-source=kube, --kubeconfig, the certificate bootstrap), verify signatures with each pod's imagePullSecrets and its service account's, before the docker config file")
	fs.StringVar(&k.certSecret, "cert-bootstrap-secret", "", "keep a self-signed CA and the serving certificate in this Secret of --namespace, write them to --tls-cert-file/--tls-private-key-file, patch the caBundle and renew before expiry (no cert-manager needed); empty: off")
	fs.StringVar(&k.certWebhook, "cert-bootstrap-webhook", "imagegate.dev", "ValidatingWebhookConfiguration whose caBundle --cert-bootstrap-secret patches; empty: none")
	fs.StringVar(&k.certMutatingHook, "cert-bootstrap-mutating-webhook", "imagegate.dev", "MutatingWebhookConfiguration (digest pinning) whose caBundle --cert-bootstrap-secret patches too; empty: none")
	fs.Var(&k.certHosts, "cert-bootstrap-hosts", "DNS names and IPs of the bootstrapped serving certificate (repeatable or comma-separated; default imagegate.NAMESPACE.svc and imagegate.NAMESPACE.svc.cluster.local)")
	fs.DurationVar(&k.certValidity, "cert-bootstrap-validity", 365*24*time.Hour, "lifetime of a bootstrapped serving certificate")
	fs.DurationVar(&k.certRenewBefore, "cert-bootstrap-renew-before", 30*24*time.Hour, "issue a new serving certificate this long before the current one expires")
}

// resolve applies the default source and checks the combination; it returns
// a usage message or "".
func (k *kubeFlags) resolve(policies, scanStore string) string {
	if k.certSecret != "" && k.certRenewBefore >= k.certValidity {
		return "--cert-bootstrap-renew-before must be shorter than --cert-bootstrap-validity"
	}
	if k.vulnReports && scanStore == "" {
		return "--kube-vulnerability-reports needs --scan-store"
	}
	if k.source == "" {
		k.source = "file"
		if k.kubeconfig != "" && policies == "" {
			k.source = "kube"
		}
	}
	if bundle.IsRef(k.source) {
		if policies != "" {
			return "--policies and --policy-source=oci://REF exclude each other"
		}
		return ""
	}
	switch k.source {
	case "file":
		if k.kubeconfig != "" && !k.vulnReports && k.certSecret == "" && !k.runtime {
			return "--kubeconfig needs --policy-source=kube, --kube-vulnerability-reports, --cert-bootstrap-secret or --runtime-compliance"
		}
		if policies == "" {
			return "required: --policies (or --policy-source=kube)"
		}
	case "kube":
		if policies != "" {
			return "--policies and --policy-source=kube exclude each other"
		}
	default:
		return fmt.Sprintf("--policy-source %q: expected file, kube or oci://REF", k.source)
	}
	return ""
}

// start watches the cluster's policy resources when the source is kube,
// adding the policy validation endpoint to extra. It reports whether it did.
func (k *kubeFlags) start(ctx context.Context, client dynamic.Interface, log *slog.Logger, onLoad func(*policy.Snapshot, error), extra map[string]http.Handler) (bool, error) {
	if k.source != "kube" {
		return false, nil
	}
	w, err := kube.NewWatcher(client, kube.WithLogger(log), kube.WithStatus(k.writeStatus))
	if err != nil {
		return false, err
	}
	extra["POST "+kube.ValidationPath] = &kube.ValidationHandler{Attestors: w.HasAttestor}
	go func() {
		if err := w.Run(ctx, onLoad); err != nil && ctx.Err() == nil {
			log.Error("policy resources not watched", "error", err.Error())
		}
	}()
	return true, nil
}

// needsCluster reports whether some feature of serve talks to the API
// server; live says signatures are verified live (no --facts).
func (k *kubeFlags) needsCluster(live bool) bool {
	return k.source == "kube" || k.vulnReports || k.certSecret != "" ||
		(live && k.pullSecrets && k.kubeconfig != "")
}

// connect builds the one client serve's features share, so they share its
// connections and rate limit; nil when none of them needs a cluster (then
// no in-cluster configuration is required). It must run after resolve.
func (k *kubeFlags) connect(live bool) (dynamic.Interface, error) {
	if !k.needsCluster(live) {
		return nil, nil
	}
	cfg, err := restConfig("--kubeconfig", k.kubeconfig, "imagegate")
	if err != nil {
		return nil, err
	}
	// client-go's default (5/s) would make the first status writes of a
	// large policy set take minutes.
	cfg.QPS, cfg.Burst = 50, 100
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig: %w", err)
	}
	return client, nil
}

// restConfig is the client configuration of the kubeconfig file at path,
// or the in-cluster one when path is empty; errors name flag.
func restConfig(flag, path, userAgent string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if path != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	cfg.UserAgent = userAgent
	return cfg, nil
}

// startReports imports VulnerabilityReports into the scan store when
// --kube-vulnerability-reports is set, refreshing the facts after each batch.
func (k *kubeFlags) startReports(ctx context.Context, client dynamic.Interface, log *slog.Logger, store scan.Store, scans *scan.Reader) error {
	if !k.vulnReports {
		return nil
	}
	go kube.WatchVulnerabilityReports(ctx, client, func(records []*scan.Record) error {
		if err := store.Import(ctx, records, nil); err != nil {
			return err
		}
		_, err := scans.Refresh()
		return err
	}, log)
	return nil
}

// bootstrapCerts, with --cert-bootstrap-secret, gets the serving certificate
// into certFile and keyFile before the server starts (retrying while the API
// server cannot be reached) and keeps it renewed.
func (k *kubeFlags) bootstrapCerts(ctx context.Context, client dynamic.Interface, log *slog.Logger, namespace, certFile, keyFile string) error {
	if k.certSecret == "" {
		return nil
	}
	hosts := []string(k.certHosts)
	if len(hosts) == 0 {
		hosts = []string{"imagegate." + namespace + ".svc", "imagegate." + namespace + ".svc.cluster.local"}
	}
	b := &kube.CertBootstrap{Client: client, Namespace: namespace, Secret: k.certSecret, Webhook: k.certWebhook, MutatingWebhook: k.certMutatingHook, Hosts: hosts,
		CertFile: certFile, KeyFile: keyFile, Validity: k.certValidity, RenewBefore: k.certRenewBefore, Log: log}
	for {
		err := b.Ensure(ctx)
		if err == nil {
			break
		}
		log.Warn("serving certificate not bootstrapped yet; retrying", "error", err.Error())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	go b.Run(ctx, min(k.certRenewBefore/4, time.Hour))
	return nil
}
