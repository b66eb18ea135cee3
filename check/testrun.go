package check

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/workload"
)

// Outcome is one compared expectation.
type Outcome struct {
	Line     int    // line of the expectation in the test file
	Resource string // Kind/namespace/name
	What     string // "allowed", or "image X action" and so on
	Pass     bool
	Want     string
	Got      string
}

// Run decides the test's resources and compares each expectation. An
// error is bad input (policies, facts or manifests that do not load);
// warnings are check's (no policies, a cluster id nothing names, a
// workload without containers).
func (t *Test) Run(ctx context.Context) (outs []Outcome, warnings []string, err error) {
	snap, err := t.LoadPolicies()
	if err != nil {
		return nil, nil, err
	}
	var source facts.Source = facts.None{}
	if t.Facts != "" {
		f, err := facts.LoadFile(t.Rel(t.Facts))
		if err != nil {
			return nil, nil, err
		}
		source = f
	}
	paths := make([]string, len(t.Resources))
	for i, r := range t.Resources {
		paths[i] = t.Rel(r)
	}
	objs, err := workload.ReadManifests(paths, nil)
	if err != nil {
		return nil, nil, err
	}
	engine, err := rego.New(ctx, snap, rego.WithClusterID(t.ClusterID))
	if err != nil {
		return nil, nil, err
	}
	warnings = admission.SnapshotWarnings(snap, t.ClusterID)
	checker := &Checker{Decider: admission.NewDecider(admission.Static{E: engine}, source)}
	results := map[string]Result{}
	var names []string
	for _, l := range objs {
		if len(l.Images) == 0 {
			warnings = append(warnings, ZeroImageWarning(l))
		}
		r, err := checker.Decide(ctx, l)
		if err != nil {
			return nil, nil, err
		}
		key := r.Kind + "/" + r.Namespace + "/" + r.Name
		results[key] = r
		names = append(names, key)
	}
	for i, e := range t.Expect {
		outs = append(outs, compare(t.ExpectLine(i), e, results, names)...)
	}
	return outs, warnings, nil
}

func compare(line int, e Expectation, results map[string]Result, names []string) []Outcome {
	r, ok := results[e.Resource]
	if !ok {
		return []Outcome{{Line: line, Resource: e.Resource, What: "resource", Want: "a resource of that kind, namespace and name",
			Got: "none; the resources are " + strings.Join(names, ", ")}}
	}
	var outs []Outcome
	add := func(what, want, got string) {
		outs = append(outs, Outcome{Line: line, Resource: e.Resource, What: what, Pass: want == got, Want: want, Got: got})
	}
	if e.Allowed != nil {
		add("allowed", fmt.Sprint(*e.Allowed), fmt.Sprint(r.Allowed))
	}
	for _, want := range e.Images {
		i := slices.IndexFunc(r.Images, func(img Image) bool { return img.Image == want.Image })
		if i < 0 {
			var have []string
			for _, img := range r.Images {
				have = append(have, img.Image)
			}
			add("image "+want.Image, "an image written so", "none; the images are "+strings.Join(have, ", "))
			continue
		}
		got := r.Images[i]
		if want.Action != "" {
			add("image "+want.Image+" action", want.Action, string(got.Action))
		}
		if want.Strategies != nil {
			add("image "+want.Image+" strategies", list(*want.Strategies), list(got.Strategies))
		}
		if want.MissingAttestors != nil {
			add("image "+want.Image+" missingAttestors", list(*want.MissingAttestors), list(got.MissingAttestors))
		}
	}
	return outs
}

// list prints a list sorted, so that order never fails a test.
func list[T int64 | string](xs []T) string {
	s := slices.Clone(xs)
	slices.Sort(s)
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
