package rego_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/workload"
)

// benchStrategies makes n strategies that all apply to cluster c1 and
// namespace default, shaped like a real rule set: most target specific image
// names (some by glob), some labels; criteria rotate over unscanned,
// malicious and each finding category; actions rotate alert/block/allow.
func benchStrategies(n int) []policy.Object {
	objs := make([]policy.Object, 0, n)
	levels := []string{"high", "medium", "low"}
	for i := 0; i < n; i++ {
		s := &policy.OpaStrategy{
			TypeMeta: policy.TypeMeta{APIVersion: policy.APIVersion, Kind: policy.KindOpaStrategy},
			Metadata: policy.ObjectMeta{Name: fmt.Sprintf("s%d", i)},
			Spec: policy.OpaStrategySpec{
				StrategyID: int64(i + 1),
				RuleAction: 1 + i%2,
				Scopes:     []policy.OpaScope{{ClusterID: "c1", AllNamespace: 1}},
				WhiteList:  []string{fmt.Sprintf("exempt-%d", i)},
			},
		}
		switch i % 4 {
		case 0:
			s.Spec.ImageName = []string{fmt.Sprintf("team%d/app", i)}
		case 1:
			s.Spec.ImageName = []string{fmt.Sprintf("svc-%d-*", i)}
		case 2:
			s.Spec.Label = []string{fmt.Sprintf("team:t%d", i)}
		case 3: // targets every image
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

func benchInput() rego.Input {
	refs := []string{"registry.example.com/team3/app:1.0", "registry.example.com/shop/cart:2.1", "nginx:1.25"}
	in := rego.Input{Namespace: "default", Labels: map[string]string{"app": "web", "team": "t2"}}
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

// BenchmarkEval measures a full evaluation (the decision cache is off): the
// cost of a pod imagegate has not seen before.
func BenchmarkEval(b *testing.B) { benchEval(b, 0) }

// BenchmarkEvalCached measures a repeated pod (ReplicaSet scale-up, rollout,
// Job): same namespace, labels, images and facts.
func BenchmarkEvalCached(b *testing.B) { benchEval(b, rego.DefaultDecisionCacheSize) }

func benchEval(b *testing.B, cacheSize int) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("strategies=%d", n), func(b *testing.B) {
			snap, err := policy.NewSnapshot(benchStrategies(n)...)
			if err != nil {
				b.Fatal(err)
			}
			e, err := rego.New(context.Background(), snap, rego.WithClusterID("c1"), rego.WithDecisionCache(cacheSize))
			if err != nil {
				b.Fatal(err)
			}
			in := benchInput()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.Eval(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCompile is what a policy change costs: paid once per snapshot,
// never per request (compare with BenchmarkEval).
func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("strategies=%d", n), func(b *testing.B) {
			snap, err := policy.NewSnapshot(benchStrategies(n)...)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := rego.New(context.Background(), snap, rego.WithClusterID("c1")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
