package compliance

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
)

// snapshotDiff is what changed between two snapshots: the attestors by
// name, and whether anything else did.
type snapshotDiff struct {
	attestors []string
	objects   []string // kind/name of every changed object, for the cause
	others    bool
}

func (d snapshotDiff) String() string {
	if len(d.objects) == 0 {
		return "policy snapshot reloaded"
	}
	const most = 10
	if len(d.objects) > most {
		return fmt.Sprintf("%s and %d more changed", strings.Join(d.objects[:most], ", "), len(d.objects)-most)
	}
	return strings.Join(d.objects, ", ") + " changed"
}

func diffSnapshots(a, b *policy.Snapshot) snapshotDiff {
	var d snapshotDiff
	if a == nil || b == nil {
		d.others = true
		return d
	}
	compare := func(kind string, x, y map[string]any) []string {
		var out []string
		for n, v := range x {
			if w, ok := y[n]; !ok || !reflect.DeepEqual(v, w) {
				out = append(out, n)
			}
		}
		for n := range y {
			if _, ok := x[n]; !ok {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		for _, n := range out {
			d.objects = append(d.objects, kind+"/"+n)
		}
		return out
	}
	atts := func(s *policy.Snapshot) map[string]any {
		m := map[string]any{}
		for _, x := range s.Attestors() {
			m[x.Metadata.Name] = x.Spec
		}
		return m
	}
	pols := func(s *policy.Snapshot) map[string]any {
		m := map[string]any{}
		for _, x := range s.Policies() {
			m[x.Metadata.Name] = x.Spec
		}
		return m
	}
	strats := func(s *policy.Snapshot) map[string]any {
		m := map[string]any{}
		for _, x := range s.Strategies() {
			m[x.Name()] = x.Spec
		}
		return m
	}
	d.attestors = compare("Attestor", atts(a), atts(b))
	if len(compare("BinarySecurityPolicy", pols(a), pols(b))) > 0 {
		d.others = true
	}
	if len(compare("OpaStrategy", strats(a), strats(b))) > 0 {
		d.others = true
	}
	if len(d.objects) == 0 {
		d.others = true // same objects, another engine: decide everything
	}
	return d
}

// requires reports whether engine e asks for any of attestors for the
// workload s in namespace ns.
func requires(e *rego.Engine, ns string, s *State, attestors []string) bool {
	if e == nil {
		return true
	}
	for _, a := range e.RequiredAttestors(ns) {
		if slices.Contains(attestors, a) {
			return true
		}
	}
	for _, img := range s.Images {
		for _, m := range img.MissingAttestors {
			if slices.Contains(attestors, m.Attestor) {
				return true
			}
		}
	}
	return false
}
