package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/workload"
)

// checkResult is one object's verdict in imagegate check -o json.
type checkResult struct {
	Kind       string       `json:"kind"`
	Namespace  string       `json:"namespace"`
	Name       string       `json:"name"`
	Allowed    bool         `json:"allowed"`
	Images     []checkImage `json:"images"`
	Warnings   []string     `json:"warnings"`
	Violations []string     `json:"violations"`
}

func runCheck(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "check --policies DIR [--facts FILE] [--cluster-id ID] [-o json|text] MANIFEST...", stderr)
	policies := fs.String("policies", "", "directory (or file) of policy objects, read recursively")
	factsFile := fs.String("facts", "", "facts file (YAML/JSON); without it every image is unsigned and unscanned")
	clusterID := fs.String("cluster-id", "", "cluster to decide for; empty applies every cluster's scopes")
	output := fs.String("o", "text", "output format: text or json")
	maxScanAge := fs.Duration("max-scan-age", 0, "scan results older than this count as unscanned (0: never)")
	timeout := fs.Duration("timeout", 30*time.Second, "time allowed to verify signatures live, per object")
	scanStore := fs.String("scan-store", "", "scan store file (imagegate scan import) to take scan facts from")
	var vf verifierFlags
	vf.register(fs)
	manifests, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "imagegate check: "+format+"\n", a...)
		return exitBadUsage
	}
	switch {
	case *policies == "":
		return bad("--policies is required")
	case len(manifests) == 0:
		return bad("no MANIFEST given (a file, or - for stdin)")
	case *output != "text" && *output != "json":
		return bad("-o %q: expected json or text", *output)
	}
	snap, err := policy.LoadDir(*policies)
	if err != nil {
		return bad("invalid policies:\n%v", err)
	}
	source, _, verifier, err := factsSource(*factsFile, *scanStore, &vf, nil)
	if err != nil {
		return bad("%v", err)
	}
	if *factsFile == "" {
		scans := "no scan store, so every image is treated as unscanned"
		if *scanStore != "" {
			scans = "scan facts come from " + *scanStore
		}
		fmt.Fprintf(stderr, "imagegate check: no --facts given: signatures are verified live against the registries; %s\n", scans)
	}
	objs, err := readManifests(manifests, stdin)
	if err != nil {
		return bad("%v", err)
	}
	engine, err := rego.New(ctx, snap, rego.WithClusterID(*clusterID), rego.WithMaxScanAge(*maxScanAge))
	if err != nil {
		return bad("%v", err)
	}
	for _, name := range vf.scanAttestors {
		if _, ok := snap.Attestor(name); !ok {
			return bad("--scan-attestors %q: no Attestor of that name in %s", name, *policies)
		}
	}
	decider := admission.NewDecider(admission.Static{E: engine}, source, admission.WithScanAttestors(vf.scanAttestors...))
	results := make([]checkResult, 0, len(objs))
	for _, obj := range objs {
		octx, cancel := context.WithTimeout(ctx, *timeout)
		var digests []resolvedDigest
		if verifier != nil { // live: tags are pinned first, as in the cluster
			// Half the time at most, so that a registry that never answers
			// leaves the decision time to say so.
			rctx, rcancel := context.WithTimeout(octx, *timeout/2)
			obj, digests = resolveDigests(rctx, verifier, obj)
			rcancel()
		}
		d, err := decider.Decide(octx, obj)
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "imagegate check: %s %s/%s: %v\n", obj.Kind, obj.Namespace, obj.Name, err)
			return exitDenied
		}
		results = append(results, checkResult{
			Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name, Allowed: d.Allowed,
			Images: withDigests(d.Images, digests), Warnings: d.Warnings, Violations: d.Violations,
		})
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"results": results})
	} else {
		printText(stdout, results)
	}
	for _, r := range results {
		if !r.Allowed {
			return exitDenied
		}
	}
	return exitOK
}

func readManifests(paths []string, stdin io.Reader) ([]*workload.Object, error) {
	var objs []*workload.Object
	for _, p := range paths {
		var data []byte
		var err error
		name := p
		if p == "-" {
			name = "<stdin>"
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(p)
		}
		if err != nil {
			return nil, err
		}
		o, err := workload.DecodeManifest(name, data)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

func printText(w io.Writer, results []checkResult) {
	for _, r := range results {
		verdict := "ALLOWED"
		if !r.Allowed {
			verdict = "DENIED"
		}
		fmt.Fprintf(w, "%s %s %s/%s\n", verdict, r.Kind, r.Namespace, r.Name)
		for _, img := range r.Images {
			fmt.Fprintf(w, "  %-8s %s%s\n", img.Action, img.Image, digestNote(img))
			for _, reason := range img.Reasons {
				fmt.Fprintf(w, "           %s\n", strings.TrimSpace(reason))
			}
		}
	}
}

// digestNote is what text output says of an image's digest: what its tag
// resolved to, or why it did not.
func digestNote(img checkImage) string {
	switch {
	case img.DigestError != "":
		return " (digest not resolved: " + img.DigestError + ")"
	case img.Digest != "" && !strings.HasSuffix(img.Image, img.Digest):
		return " (" + img.Digest + ")"
	}
	return ""
}
