package rego_test

import (
	"context"
	"slices"
	"testing"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/workload"
)

// TestDecisionFindings: an image's decision lists the findings behind the
// strategies that hit it, once each, and no finding no strategy selected.
func TestDecisionFindings(t *testing.T) {
	objs, err := policy.Parse("s.yaml", []byte(`
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: high}
spec: {strategyId: 1, clusterId: c1, ruleAction: 2, alarmDetail: {vul: {riskLevel: [high]}}}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: item}
spec: {strategyId: 2, clusterId: c1, ruleAction: 1, alarmDetail: {vul: {item: [{id: CVE-1, name: one}]}, baseline: {riskLevel: [low]}}}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: names}
spec: {strategyId: 3, clusterId: c1, ruleAction: 1, imageName: [named]}
`))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.NewSnapshot(objs...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := rego.New(context.Background(), snap, rego.WithClusterID("c1"))
	if err != nil {
		t.Fatal(err)
	}
	scan := &facts.Scan{Findings: []facts.Finding{
		{Category: "Vul", ID: "CVE-1", Level: "high", Class: "cve"},
		{Category: "Vul", ID: "CVE-2", Level: "medium", Class: "cve"},
		{Category: "Baseline", ID: "b1", Level: "low"},
	}}
	tests := []struct {
		name, image string
		scan        *facts.Scan
		want        []string
	}{
		{"two strategies share a finding", "reg/app:1", scan, []string{"Vul CVE-1 high", "Baseline b1 low"}},
		{"name rule, no findings", "reg/named:1", &facts.Scan{}, nil},
		{"pass", "reg/clean:1", &facts.Scan{Findings: []facts.Finding{{Category: "Vul", ID: "CVE-9", Level: "low"}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Eval(context.Background(), rego.Input{Namespace: "default", Images: []workload.Image{workload.ParseImage(tt.image)},
				Facts: []*facts.Image{{Scan: tt.scan}}})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range d.Images[0].Findings {
				got = append(got, f.Category+" "+f.ID+" "+f.Level)
			}
			slices.Sort(got)
			w := slices.Clone(tt.want)
			slices.Sort(w)
			if !slices.Equal(got, w) {
				t.Errorf("findings %v, want %v", got, w)
			}
		})
	}
}
