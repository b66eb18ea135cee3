package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestAlertRulesPromtool runs Prometheus's own rule checks where promtool
// is installed (Debian: apt-get install prometheus): promtool check rules
// on the alerts as deploy/prometheus has them (expressions and annotation
// templates), and promtool test rules on testdata/alerts.test.yaml, which
// feeds each alert series that must make it fire, and series that must
// not. Without promtool it skips (fails under IMAGEGATE_E2E, where
// scripts/e2e-tools.sh has installed it): TestMonitoringQueries and
// TestAlertRules check the same files with the PromQL parser.
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("IMAGEGATE_E2E") != "" {
			t.Fatal("no promtool on PATH (scripts/e2e-tools.sh installs it)")
		}
		t.Skip("no promtool on PATH (apt-get install prometheus)")
	}
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Spec struct {
			Groups []map[string]any `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, v any) string {
		t.Helper()
		out, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	full := write("full.yaml", obj.Spec)
	if out, err := exec.Command(promtool, "check", "rules", full).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	// promtool test rules compares annotations too; the cases name only
	// labels, so the rules under test go without them.
	for _, g := range obj.Spec.Groups {
		for _, r := range g["rules"].([]any) {
			delete(r.(map[string]any), "annotations")
		}
	}
	write("rules.yaml", obj.Spec)
	cases, err := os.ReadFile("testdata/alerts.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	test := filepath.Join(dir, "alerts.test.yaml")
	if err := os.WriteFile(test, cases, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", test).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
