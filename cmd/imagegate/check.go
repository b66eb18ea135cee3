package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/check"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/workload"
)

func runCheck(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "check --policies DIR|oci://REF [--policy-key F] [--facts FILE] [--cluster-id ID] [-o json|text] [--strict] MANIFEST|DIR...", stderr)
	policies := fs.String("policies", "", "directory (or file) of policy objects, read recursively; or a signed policy bundle, oci://REGISTRY/REPOSITORY:TAG (with --policy-key or --policy-attestor-file)")
	factsFile := fs.String("facts", "", "facts file (YAML/JSON) to decide from instead of the registries; without it signatures are verified live and scan facts come from --scan-store (none: unscanned)")
	clusterID := fs.String("cluster-id", "", "cluster to decide for; empty applies every cluster's scopes")
	output := fs.String("o", "text", "output format: text or json")
	strict := fs.Bool("strict", false, "exit 1 on any warning (no policies, a cluster id no policy names, a workload without containers)")
	maxScanAge := fs.Duration("max-scan-age", 0, "scan results older than this count as unscanned (0: never)")
	timeout := fs.Duration("timeout", 30*time.Second, "time allowed to verify signatures live, per object")
	scanStore := fs.String("scan-store", "", "scan store file (imagegate scan import) to take scan facts from")
	var vf verifierFlags
	vf.register(fs)
	var bf bundleFlags
	bf.register(fs)
	manifests, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	out := &checkOutput{json: *output == "json", stdout: stdout, stderr: stderr}
	switch {
	case *output != "text" && *output != "json":
		out.json = false
		return out.bad(fmt.Errorf("-o %q: expected json or text", *output))
	case *policies == "":
		return out.bad(fmt.Errorf("--policies is required"))
	case len(manifests) == 0:
		return out.bad(fmt.Errorf("no MANIFEST given (a file, a directory, or - for stdin)"))
	}
	snap, err := bf.loadPolicies(ctx, fs, *policies, &vf, *timeout)
	if err != nil {
		return out.bad(err)
	}
	st := newStores(slog.New(slog.DiscardHandler), nil)
	defer st.close()
	source, _, _, verifier, err := factsSource(context.Background(), *factsFile, *scanStore, st, &vf, nil)
	if err != nil {
		return out.bad(err)
	}
	if *factsFile == "" {
		scans := "no scan store, so every image is treated as unscanned"
		if *scanStore != "" {
			scans = "scan facts come from " + *scanStore
		}
		fmt.Fprintf(stderr, "imagegate check: no --facts given: signatures are verified live against the registries; %s\n", scans)
	}
	objs, err := workload.ReadManifests(manifests, stdin)
	if err != nil {
		return out.bad(err)
	}
	engine, err := rego.New(ctx, snap, rego.WithClusterID(*clusterID), rego.WithMaxScanAge(*maxScanAge))
	if err != nil {
		return out.bad(err)
	}
	for _, name := range vf.scanAttestors {
		if _, ok := snap.Attestor(name); !ok {
			return out.bad(fmt.Errorf("--scan-attestors %q: no Attestor of that name in %s", name, *policies))
		}
	}
	for _, w := range admission.SnapshotWarnings(snap, *clusterID) {
		out.warn(fmt.Sprintf("--policies %s: %s", *policies, w))
	}
	checker := &check.Checker{
		Decider: admission.NewDecider(admission.Static{E: engine}, source, admission.WithScanAttestors(vf.scanAttestors...)),
		Timeout: *timeout,
	}
	if verifier != nil { // live: tags are pinned first, as in the cluster
		checker.Resolver = verifier
	}
	results := make([]check.Result, 0, len(objs))
	for _, l := range objs {
		if len(l.Images) == 0 {
			out.warn(check.ZeroImageWarning(l))
		}
		r, err := checker.Decide(ctx, l)
		if err != nil {
			fmt.Fprintf(stderr, "imagegate check: %v\n", err)
			return exitDenied
		}
		results = append(results, r)
	}
	out.results(results)
	for _, r := range results {
		if !r.Allowed {
			return exitDenied
		}
	}
	if *strict && len(out.warnings) > 0 {
		fmt.Fprintf(stderr, "imagegate check: --strict: %d warning(s)\n", len(out.warnings))
		return exitDenied
	}
	return exitOK
}
