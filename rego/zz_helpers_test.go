package rego

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

func expStrategies(n int) []policy.Object {
	objs := make([]policy.Object, 0, n)
	levels := []string{"high", "medium", "low"}
	for i := 0; i < n; i++ {
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

func expInput() Input {
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

func expEngine(b testing.TB, n int) *Engine {
	snap, err := policy.NewSnapshot(expStrategies(n)...)
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(context.Background(), snap, WithClusterID("c1"), WithDecisionCache(0))
	if err != nil {
		b.Fatal(err)
	}
	return e
}
