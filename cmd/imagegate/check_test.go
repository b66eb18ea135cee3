package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var binary string

// TestMain builds the real binary once; the CLI tests run it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imagegate-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "imagegate")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = "../.."
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

type jsonOut struct {
	Results []struct {
		Kind, Namespace, Name string
		Allowed               bool
		Images                []struct {
			Image            string   `json:"image"`
			Action           string   `json:"action"`
			Strategies       []int64  `json:"strategies"`
			MissingAttestors []string `json:"missingAttestors"`
			Digest           string   `json:"digest"`
			DigestError      string   `json:"digestError"`
			Reasons          []string `json:"reasons"`
		}
		Warnings []string
	}
}

func TestCheckExamplesJSON(t *testing.T) {
	out, errOut, code := runCLI(t, "", "check", "--policies", "examples/policies", "--facts", "examples/facts.yaml",
		"--cluster-id", "prod-cluster", "-o", "json", "examples/manifests/web.yaml", "examples/manifests/debug.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (web is denied); stderr %s", code, errOut)
	}
	var got jsonOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if len(got.Results) != 2 {
		t.Fatalf("results: %+v", got.Results)
	}
	web, debug := got.Results[0], got.Results[1]
	if web.Kind != "Deployment" || web.Namespace != "prod" || web.Name != "web" || web.Allowed {
		t.Errorf("web: %+v", web)
	}
	if len(web.Images) != 2 || web.Images[1].Image != "registry.example.com/team/legacy:2.3" || web.Images[1].Action != "block" ||
		len(web.Images[1].Strategies) != 1 || web.Images[1].Strategies[0] != 1005 || web.Images[1].MissingAttestors == nil {
		t.Errorf("web images: %+v", web.Images)
	}
	if want := `image "registry.example.com/team/legacy:2.3" blocked by strategy 1005 "block-critical-vulns": Vul CVE-2024-3094 (high)`; web.Images[1].Reasons[0] != want {
		t.Errorf("reason %q, want %q", web.Images[1].Reasons[0], want)
	}
	if !debug.Allowed || debug.Images[0].Action != "allow" {
		t.Errorf("debug: %+v", debug)
	}
}

func TestCheckExitCodes(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		inStderr string
	}{
		{"allowed", []string{"check", "--policies", "examples/policies", "--facts", "examples/facts.yaml", "--cluster-id", "prod-cluster", "examples/manifests/debug.yaml"}, "", 0, ""},
		{"denied", []string{"check", "--policies", "examples/policies", "--facts", "examples/facts.yaml", "--cluster-id", "prod-cluster", "examples/manifests/web.yaml"}, "", 1, ""},
		{"flags after manifest", []string{"check", "examples/manifests/web.yaml", "--policies", "examples/policies", "--facts", "examples/facts.yaml", "--cluster-id", "prod-cluster"}, "", 1, ""},
		{"no facts warns", []string{"check", "--policies", "examples/policies", "--cluster-id", "other", "examples/manifests/web.yaml"}, "", 0, "every image is treated as unscanned"},
		{"stdin", []string{"check", "--policies", "examples/policies", "--cluster-id", "prod-cluster", "-"}, "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: prod}\nspec: {containers: [{name: a, image: nginx}]}\n", 1, ""},
		{"missing policies flag", []string{"check", "examples/manifests/web.yaml"}, "", 2, "--policies is required"},
		{"no manifest", []string{"check", "--policies", "examples/policies"}, "", 2, "no MANIFEST"},
		{"bad output", []string{"check", "--policies", "examples/policies", "-o", "yaml", "examples/manifests/web.yaml"}, "", 2, `-o "yaml"`},
		{"unknown flag", []string{"check", "--polices", "x"}, "", 2, "flag provided but not defined"},
		{"missing manifest file", []string{"check", "--policies", "examples/policies", "nope.yaml"}, "", 2, "nope.yaml"},
		{"no workload", []string{"check", "--policies", "examples/policies", "-"}, "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", 2, "<stdin>: no workload to check"},
		{"malformed manifest", []string{"check", "--policies", "examples/policies", "-"}, "kind: [", 2, "<stdin>:1: document 1: malformed YAML/JSON"},
		{"unknown command", []string{"frobnicate"}, "", 2, "unknown command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, c.stdin, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, c.code, errOut)
			}
			if !strings.Contains(errOut, c.inStderr) {
				t.Errorf("stderr %q does not contain %q", errOut, c.inStderr)
			}
		})
	}
}

func TestCheckBadPoliciesNameFileAndField(t *testing.T) {
	dir := t.TempDir()
	bad := "apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {name: s}\nspec:\n  strategyId: 1\n  ruleAction: 1\n  alarmDetail: {vul: {riskLevel: [high, severe]}}\n"
	file := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, "", "check", "--policies", dir, "examples/manifests/web.yaml")
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	want := file + `:7: OpaStrategy s: spec.alarmDetail.vul.riskLevel[1]: "severe" is not one of high, medium, low`
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr %q\nwant %q", errOut, want)
	}
}

func TestCheckBadFacts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "facts.yaml")
	os.WriteFile(file, []byte("images:\n  nginx:\n    scan:\n      findings:\n      - {category: Vuln, id: x, level: high}\n"), 0o644)
	_, errOut, code := runCLI(t, "", "check", "--policies", "examples/policies", "--facts", file, "examples/manifests/web.yaml")
	if code != 2 || !strings.Contains(errOut, file) || !strings.Contains(errOut, `images[nginx].scan.findings[0].category: "Vuln" is not one of`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestCheckAdmissionReviewAndText(t *testing.T) {
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"group":"","version":"v1","kind":"Pod"},
	"namespace":"prod","operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
	"spec":{"containers":[{"name":"a","image":"registry.example.com/team/legacy:2.3"}]}}}}`
	out, _, code := runCLI(t, review, "check", "--policies", "examples/policies", "--facts", "examples/facts.yaml", "--cluster-id", "prod-cluster", "-")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"DENIED Pod prod/p", "block", `blocked by strategy 1005 "block-critical-vulns"`} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}
