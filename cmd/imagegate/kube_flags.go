package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/imagegate/imagegate/kube"
	"github.com/imagegate/imagegate/policy"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeFlags select the Kubernetes policy source of imagegate serve.
type kubeFlags struct {
	source, kubeconfig string
	writeStatus        bool
}

func (k *kubeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.source, "policy-source", "", "where policies come from: file (--policies DIR) or kube (the cluster's imagegate.dev resources); default kube when --kubeconfig is set without --policies, else file")
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig file for --policy-source=kube; empty: in-cluster configuration")
	fs.BoolVar(&k.writeStatus, "kube-write-status", true, "write Accepted/Invalid conditions to the policy resources' status (--policy-source=kube)")
}

// resolve applies the default source and checks the combination; it returns
// a usage message or "".
func (k *kubeFlags) resolve(policies string) string {
	if k.source == "" {
		k.source = "file"
		if k.kubeconfig != "" && policies == "" {
			k.source = "kube"
		}
	}
	switch k.source {
	case "file":
		if k.kubeconfig != "" {
			return "--kubeconfig needs --policy-source=kube"
		}
		if policies == "" {
			return "required: --policies (or --policy-source=kube)"
		}
	case "kube":
		if policies != "" {
			return "--policies and --policy-source=kube exclude each other"
		}
	default:
		return fmt.Sprintf("--policy-source %q: expected file or kube", k.source)
	}
	return ""
}

// start watches the cluster's policy resources when the source is kube,
// adding the policy validation endpoint to extra. It reports whether it did.
func (k *kubeFlags) start(ctx context.Context, log *slog.Logger, onLoad func(*policy.Snapshot, error), extra map[string]http.Handler) (bool, error) {
	if k.source != "kube" {
		return false, nil
	}
	var cfg *rest.Config
	var err error
	if k.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", k.kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return false, fmt.Errorf("--kubeconfig: %w", err)
	}
	cfg.UserAgent = "imagegate"
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return false, fmt.Errorf("--kubeconfig: %w", err)
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
