package rego_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/workload"
	"sigs.k8s.io/yaml"
)

// caseFile is one YAML file of decision cases under testdata/cases.
type caseFile struct {
	Cases []decisionCase `json:"cases"`
}

type decisionCase struct {
	Name       string         `json:"name"`
	ClusterID  *string        `json:"clusterId"` // default "c1"; "" means every cluster
	MaxScanAge string         `json:"maxScanAge"`
	Now        string         `json:"now"` // default 2026-11-23T00:00:00Z
	FailOpen   bool           `json:"failOpen"`
	Policies   string         `json:"policies"`
	Facts      map[string]any `json:"facts"`
	Manifest   string         `json:"manifest"`
	Expect     []expectObject `json:"expect"` // one per workload in the manifest
}

type expectObject struct {
	Allowed           bool          `json:"allowed"`
	Images            []expectImage `json:"images"`
	Warnings          *[]string     `json:"warnings"`
	WarningsContain   []string      `json:"warningsContain"`
	Violations        *[]string     `json:"violations"`
	ViolationsContain []string      `json:"violationsContain"`
}

type expectImage struct {
	Image            string    `json:"image"`
	Action           string    `json:"action"`
	Strategies       *[]int64  `json:"strategies"`
	MissingAttestors *[]string `json:"missingAttestors"`
	Reasons          *[]string `json:"reasons"`
	ReasonsContain   []string  `json:"reasonsContain"`
}

func TestDecisionCases(t *testing.T) {
	files, err := filepath.Glob("testdata/cases/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no case files: %v", err)
	}
	total := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var cf caseFile
		if err := yaml.UnmarshalStrict(data, &cf); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, c := range cf.Cases {
			total++
			t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml")+"/"+c.Name, func(t *testing.T) {
				runCase(t, c)
			})
		}
	}
	t.Logf("%d decision cases", total)
}

func runCase(t *testing.T, c decisionCase) {
	t.Helper()
	ctx := context.Background()
	objs, err := policy.Parse("policies", []byte(c.Policies))
	if err != nil {
		t.Fatalf("policies: %v", err)
	}
	snap, err := policy.NewSnapshot(objs...)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	cluster := "c1"
	if c.ClusterID != nil {
		cluster = *c.ClusterID
	}
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	if c.Now != "" {
		if now, err = time.Parse(time.RFC3339, c.Now); err != nil {
			t.Fatal(err)
		}
	}
	opts := []rego.Option{rego.WithClusterID(cluster), rego.WithClock(func() time.Time { return now }), rego.WithVerificationErrorsAllowed(c.FailOpen)}
	if c.MaxScanAge != "" {
		d, err := time.ParseDuration(c.MaxScanAge)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, rego.WithMaxScanAge(d))
	}
	engine, err := rego.New(ctx, snap, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if engine, err = rego.CrossChecked(ctx, engine); err != nil {
		t.Fatal(err)
	}
	var source facts.Source = facts.None{}
	if c.Facts != nil {
		raw, _ := yaml.Marshal(c.Facts)
		f, err := facts.ParseFile(raw)
		if err != nil {
			t.Fatalf("facts: %v", err)
		}
		source = f
	}
	workloads, err := workload.DecodeManifest("manifest", []byte(c.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	if len(workloads) != len(c.Expect) {
		t.Fatalf("manifest has %d workloads, case expects %d", len(workloads), len(c.Expect))
	}
	decider := admission.NewDecider(admission.Static{E: engine}, source)
	for i, w := range workloads {
		d, err := decider.Decide(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		checkObject(t, w, d, c.Expect[i])
	}
}

func checkObject(t *testing.T, w *workload.Object, d *rego.Decision, want expectObject) {
	t.Helper()
	if d.Allowed != want.Allowed {
		t.Errorf("%s %s: allowed = %v, want %v\nviolations: %q\nimages: %+v", w.Kind, w.Name, d.Allowed, want.Allowed, d.Violations, d.Images)
	}
	listCheck(t, "warnings", d.Warnings, want.Warnings, want.WarningsContain)
	listCheck(t, "violations", d.Violations, want.Violations, want.ViolationsContain)
	for _, wi := range want.Images {
		idx := slices.IndexFunc(d.Images, func(x rego.ImageDecision) bool { return x.Image == wi.Image })
		if idx < 0 {
			t.Errorf("no verdict for image %q (have %+v)", wi.Image, d.Images)
			continue
		}
		got := d.Images[idx]
		if string(got.Action) != wi.Action {
			t.Errorf("image %q: action = %q, want %q (reasons %q)", wi.Image, got.Action, wi.Action, got.Reasons)
		}
		if wi.Strategies != nil && !slices.Equal(got.Strategies, *wi.Strategies) {
			t.Errorf("image %q: strategies = %v, want %v", wi.Image, got.Strategies, *wi.Strategies)
		}
		if wi.MissingAttestors != nil && !slices.Equal(got.MissingAttestors, *wi.MissingAttestors) {
			t.Errorf("image %q: missingAttestors = %q, want %q", wi.Image, got.MissingAttestors, *wi.MissingAttestors)
		}
		listCheck(t, "image "+wi.Image+" reasons", got.Reasons, wi.Reasons, wi.ReasonsContain)
	}
}

func listCheck(t *testing.T, what string, got []string, exact *[]string, contain []string) {
	t.Helper()
	if exact != nil && !slices.Equal(got, *exact) {
		t.Errorf("%s = %q, want %q", what, got, *exact)
	}
	for _, sub := range contain {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, sub) }) {
			t.Errorf("%s: none contains %q; got %q", what, sub, got)
		}
	}
}
