package rego

import (
	"context"
	"testing"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
	"github.com/open-policy-agent/opa/v1/ast"
)

// TestImageValuesCached: a cached image value is the value imageValue
// builds for the same image and facts, at any time (a scan going stale
// changes it), and facts with attestor errors are never cached.
func TestImageValuesCached(t *testing.T) {
	e := testEngine(t, `
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: s1}
spec: {strategyId: 1, ruleAction: 2, unScanedImage: true, imageName: ["*/app"], whiteList: ["dev-*"]}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: s2}
spec: {strategyId: 2, ruleAction: 1, alarmDetail: {vul: {riskLevel: [high]}}}
`, WithMaxScanAge(time.Hour))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	scan := &facts.Scan{ScannedAt: t0, Findings: []facts.Finding{{Category: facts.Vul, ID: "CVE-1", Level: "high"}}}
	for _, img := range []workload.Image{workload.ParseImage("registry.example.com/team/app:1.0"), workload.ParseImage("x:dev-1"), workload.ParseImage("BAD")} {
		for _, f := range []*facts.Image{nil, {}, {Scan: scan}, {Scan: scan, Attestors: []string{"a", "b"}}, {Malicious: true, ScanNote: "n"},
			{Scan: scan, AttestorErrors: map[string]string{"a": "no signature"}, Unverifiable: []string{"a"}}} {
			for _, now := range []time.Time{t0, t0.Add(2 * time.Hour), t0} {
				for _, policies := range []bool{false, true, false} {
					want := e.imageValue(&img, orNone(f), now, policies)
					if got := e.imageTerm(&img, f, now, policies); ast.Compare(got.Value, want) != 0 {
						t.Errorf("%s %+v at %v (policies %v):\ncached %v\nbuilt  %v", img.Ref, f, now, policies, got, want)
					}
				}
			}
		}
	}
	if n := len(e.images.m); n == 0 || n > 3*5*2*2 { // images × cacheable facts × stale × policies
		t.Errorf("%d image values cached", n)
	}
}

func orNone(f *facts.Image) *facts.Image {
	if f == nil {
		return &noFacts
	}
	return f
}

// testEngine compiles the policy documents docs into an engine.
func testEngine(t testing.TB, docs string, opts ...Option) *Engine {
	t.Helper()
	objs, err := policy.Parse("s.yaml", []byte(docs))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.NewSnapshot(objs...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), snap, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
