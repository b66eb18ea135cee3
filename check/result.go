package check

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
	"github.com/imagegate/imagegate/workload"
)

// Result is one resource's verdict, as imagegate check -o json prints it.
type Result struct {
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Name       string   `json:"name"`
	File       string   `json:"file"`
	Line       int      `json:"line,omitempty"`
	Allowed    bool     `json:"allowed"`
	Images     []Image  `json:"images"`
	Warnings   []string `json:"warnings"`
	Violations []string `json:"violations"`
}

// Image is one image's verdict: the decision, with live facts the digest
// it was decided by (what its tag resolved to) or why there is none, and
// the required attestors that could not be checked at all.
type Image struct {
	rego.ImageDecision
	Digest      string `json:"digest,omitempty"`
	DigestError string `json:"digestError,omitempty"`
	// CouldNotVerify lists the missing attestors whose signatures could not
	// be checked (registry unreachable, timeout), as opposed to checked and
	// absent or wrong. The decision is the same (unsigned); what to do
	// about it is not: retry, or fix the network, rather than sign.
	CouldNotVerify []string `json:"couldNotVerify,omitempty"`
}

// Unverifiable is the action text output shows for an unsigned image
// whose every missing attestor could not be checked.
const Unverifiable = "unverifiable"

// Shown is the action text output shows: the decision's, except that an
// image that is unsigned only because nothing could be checked says so.
func (img Image) Shown() string {
	if img.Action == rego.Unsigned && len(img.CouldNotVerify) > 0 && len(img.CouldNotVerify) == len(img.MissingAttestors) {
		return Unverifiable
	}
	return string(img.Action)
}

// Checker decides located workloads.
type Checker struct {
	Decider *admission.Decider
	// Resolver, when set (live verification), resolves tags to digests
	// before deciding, as the cluster's digest pinning does.
	Resolver webhook.DigestResolver
	Timeout  time.Duration // per resource; 0: none
}

// Decide decides one workload.
func (c *Checker) Decide(ctx context.Context, l workload.Located) (Result, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	obj := l.Object
	var digests []resolvedDigest
	if c.Resolver != nil {
		// Half the time at most, so that a registry that never answers
		// leaves the decision time to say so.
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if c.Timeout > 0 {
			rctx, cancel = context.WithTimeout(ctx, c.Timeout/2)
		}
		obj, digests = resolveDigests(rctx, c.Resolver, obj)
		cancel()
	}
	o, err := c.Decider.DecideOutcome(ctx, obj)
	if err != nil {
		return Result{}, fmt.Errorf("%s %s/%s: %w", obj.Kind, obj.Namespace, obj.Name, err)
	}
	d := o.Decision
	imgs := withDigests(d.Images, digests)
	for i := range imgs {
		if i < len(o.Facts) && o.Facts[i] != nil {
			imgs[i].CouldNotVerify = couldNotVerify(imgs[i].MissingAttestors, o.Facts[i])
		}
	}
	return Result{
		Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name, File: l.File, Line: l.Line,
		Allowed: d.Allowed, Images: imgs, Warnings: d.Warnings, Violations: d.Violations,
	}, nil
}

func couldNotVerify(missing []string, f *facts.Image) []string {
	var out []string
	for _, a := range missing {
		if slices.Contains(f.Unverifiable, a) {
			out = append(out, a)
		}
	}
	return out
}

// Summary counts resources and images.
type Summary struct {
	Resources int `json:"resources"`
	Allowed   int `json:"allowed"`
	Denied    int `json:"denied"`
	// Actions counts images per decided action (pass, alert, allow, block,
	// unsigned).
	Actions map[string]int `json:"actions"`
	// CouldNotVerify counts the unsigned images whose missing attestors
	// could not be checked (text output's unverifiable).
	CouldNotVerify int `json:"couldNotVerify"`
}

// Summarize counts rs.
func Summarize(rs []Result) Summary {
	s := Summary{Resources: len(rs), Actions: map[string]int{}}
	for _, r := range rs {
		if r.Allowed {
			s.Allowed++
		} else {
			s.Denied++
		}
		for _, img := range r.Images {
			s.Actions[string(img.Action)]++
			if img.Shown() == Unverifiable {
				s.CouldNotVerify++
			}
		}
	}
	return s
}

// ZeroImageWarning is what check says of a workload without containers: it
// is allowed, having nothing to decide, which is rarely what was meant.
func ZeroImageWarning(l workload.Located) string {
	where := l.File
	if l.Line > 0 {
		where = fmt.Sprintf("%s:%d", l.File, l.Line)
	}
	return fmt.Sprintf("%s: %s %s/%s has no containers (%s is empty or missing): nothing was checked", where, l.Kind, l.Namespace, l.Name, workload.ContainersPath(l.Kind))
}
