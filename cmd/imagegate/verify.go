package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/imagegate/imagegate/attestation"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// verifyOutput is imagegate verify -o json.
type verifyOutput struct {
	Image     string           `json:"image"`
	Digest    string           `json:"digest,omitempty"`
	Verified  bool             `json:"verified"`
	Attestors []verifyAttestor `json:"attestors"`
}

type verifyAttestor struct {
	Name     string `json:"name"`
	Verified bool   `json:"verified"`
	Outcome  string `json:"outcome"`
	Reason   string `json:"reason,omitempty"`
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", "verify IMAGE --policies DIR --attestor NAME [--attestor NAME]... [-o json|text]", stderr)
	policies := fs.String("policies", "", "directory (or file) of policy objects holding the attestors")
	var names stringList
	fs.Var(&names, "attestor", "attestor to verify (repeatable)")
	output := fs.String("o", "text", "output format: text or json")
	timeout := fs.Duration("timeout", 30*time.Second, "time allowed for the registry")
	var vf verifierFlags
	vf.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "imagegate verify: "+format+"\n", a...)
		return exitBadUsage
	}
	switch {
	case len(pos) != 1:
		return bad("expected exactly one IMAGE, got %d", len(pos))
	case *policies == "":
		return bad("--policies is required")
	case len(names) == 0:
		return bad("at least one --attestor is required")
	case *output != "text" && *output != "json":
		return bad("-o %q: expected json or text", *output)
	}
	img := workload.ParseImage(pos[0])
	if img.Err != nil {
		return bad("IMAGE %q: %v", pos[0], img.Err)
	}
	snap, err := policy.LoadDir(*policies)
	if err != nil {
		return bad("invalid policies:\n%v", err)
	}
	var atts []*policy.Attestor
	for _, n := range names {
		a, ok := snap.Attestor(n)
		if !ok {
			return bad("--attestor %q: no Attestor of that name in %s", n, *policies)
		}
		atts = append(atts, a)
	}
	v, err := vf.build(nil)
	if err != nil {
		return bad("%v", err)
	}
	vctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res := v.Verify(vctx, img, atts)
	out := verifyOutput{Image: img.Ref, Digest: res.Digest, Verified: true}
	for _, a := range res.Attestors {
		ok := a.Outcome == attestation.Verified
		out.Verified = out.Verified && ok
		out.Attestors = append(out.Attestors, verifyAttestor{Name: a.Attestor, Verified: ok, Outcome: a.Outcome.String(), Reason: a.Reason})
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		fmt.Fprintf(stdout, "%s (%s)\n", out.Image, orUnknown(out.Digest))
		for _, a := range out.Attestors {
			if a.Verified {
				fmt.Fprintf(stdout, "  %-20s verified\n", a.Name)
			} else {
				fmt.Fprintf(stdout, "  %-20s %s: %s\n", a.Name, a.Outcome, a.Reason)
			}
		}
	}
	if !out.Verified {
		return exitDenied
	}
	return exitOK
}

func orUnknown(s string) string {
	if s == "" {
		return "digest unknown"
	}
	return s
}
