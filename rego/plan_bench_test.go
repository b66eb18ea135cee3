package rego

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// BenchmarkDecision compares the two ways of evaluating decision.rego on
// the same input term (the request of engine_bench_test.go, with the index):
// OPA's tree-walking evaluator (topdown, a prepared query) and the plan
// executor the engine uses. Input building and the decision cache are left
// out: this is the Rego evaluation alone.
func BenchmarkDecision(b *testing.B) {
	for _, n := range []int{10, 1000} {
		snap, err := policy.NewSnapshot(planBenchStrategies(n)...)
		if err != nil {
			b.Fatal(err)
		}
		e, err := New(context.Background(), snap, WithClusterID("c1"), WithDecisionCache(0))
		if err != nil {
			b.Fatal(err)
		}
		input := e.withIndex(e.toInput(planBenchInput(), time.Now()))
		q, err := topdownQuery()
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.Run(fmt.Sprintf("topdown/strategies=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := q.Eval(ctx, rego.EvalParsedInput(input)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("plan/strategies=%d", n), func(b *testing.B) {
			term := ast.NewTerm(input)
			b.ReportAllocs()
			for range b.N {
				if err := e.plan.eval(ctx, term, func(*ast.Term) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// planBenchStrategies makes n strategies that all apply to cluster c1 and
// namespace default, shaped like a real rule set: most target specific image
// names (some by glob), some labels; criteria rotate over unscanned,
// malicious and each finding category; actions rotate alert/block.
func planBenchStrategies(n int) []policy.Object {
	objs := make([]policy.Object, 0, n)
	levels := []string{"high", "medium", "low"}
	for i := range n {
		s := &policy.OpaStrategy{
			TypeMeta: policy.TypeMeta{APIVersion: policy.APIVersion, Kind: policy.KindOpaStrategy},
			Metadata: policy.ObjectMeta{Name: fmt.Sprintf("s%d", i)},
			Spec: policy.OpaStrategySpec{
				StrategyID: int64(i + 1), RuleAction: 1 + i%2,
				Scopes:    []policy.OpaScope{{ClusterID: "c1", AllNamespace: 1}},
				WhiteList: []string{fmt.Sprintf("exempt-%d", i)},
			},
		}
		switch i % 4 {
		case 0:
			s.Spec.ImageName = []string{fmt.Sprintf("team%d/app", i)}
		case 1:
			s.Spec.ImageName = []string{fmt.Sprintf("svc-%d-*", i)}
		case 2:
			s.Spec.Label = []string{fmt.Sprintf("team:t%d", i)}
		}
		switch i % 5 {
		case 0:
			s.Spec.UnScanedImage = true
		case 1:
			s.Spec.MaliciousImage = true
		case 2:
			s.Spec.AlarmDetail.Vul = &policy.VulRule{RiskLevel: []string{levels[i%3]}, RiskClass: []policy.Item{{ID: "cve"}}}
		case 3:
			s.Spec.AlarmDetail.Baseline = &policy.RiskRule{Item: []policy.Item{{ID: "ak_leak"}}}
		case 4:
			s.Spec.AlarmDetail.SensitiveFile = &policy.RiskRule{RiskLevel: []string{"high"}}
		}
		objs = append(objs, s)
	}
	return objs
}

// planBenchInput is a 3-image pod: two images scanned with three findings
// each, one unscanned.
func planBenchInput() Input {
	refs := []string{"registry.example.com/team3/app:1.0", "registry.example.com/shop/cart:2.1", "nginx:1.25"}
	in := Input{Namespace: "default", Labels: map[string]string{"app": "web", "team": "t2"}}
	scanned := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, r := range refs {
		in.Images = append(in.Images, workload.ParseImage(r))
		f := &facts.Image{Attestors: []string{"ci"}}
		if i < 2 {
			f.Scan = &facts.Scan{ScannedAt: scanned, Findings: []facts.Finding{
				{Category: facts.Vul, ID: "CVE-2024-1", Level: "medium", Class: "cve"},
				{Category: facts.Vul, ID: "CVE-2024-2", Level: "low", Class: "app"},
				{Category: facts.Baseline, ID: "weak_pw", Level: "low"},
			}}
		}
		in.Facts = append(in.Facts, f)
	}
	return in
}
