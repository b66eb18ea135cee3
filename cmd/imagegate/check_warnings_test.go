package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeFiles writes name -> content under dir, creating directories.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type checkJSON struct {
	Results []struct {
		Kind, Name, File string
		Line             int
		Allowed          bool
		Images           []struct {
			Image, Action  string
			CouldNotVerify []string `json:"couldNotVerify"`
		}
	}
	Warnings []string
	Summary  struct {
		Resources, Allowed, Denied int
		Actions                    map[string]int
		CouldNotVerify             int `json:"couldNotVerify"`
	}
	Error *struct {
		File, Field, Object, Message string
		Line                         int
	}
}

// TestCheckSilentAllowsWarn: each way a new user gets ALLOWED without
// anything having been checked warns on stderr and in JSON, and --strict
// makes it exit 1.
func TestCheckSilentAllowsWarn(t *testing.T) {
	empty := t.TempDir()
	noContainers := filepath.Join(t.TempDir(), "d.yaml")
	writeFiles(t, filepath.Dir(noContainers), map[string]string{"d.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: prod}\nspec:\n  selector: {}\n  template:\n    spec: {containers: []}\n"})
	facts := []string{"--facts", "examples/facts.yaml"}
	cases := []struct {
		name    string
		args    []string
		warning string
	}{
		{"empty policies", append([]string{"check", "--policies", empty, "--cluster-id", "prod-cluster", "examples/manifests/web.yaml"}, facts...),
			"no Attestor, BinarySecurityPolicy or OpaStrategy was found: every image is allowed"},
		{"cluster id nothing names", append([]string{"check", "--policies", "examples/policies", "--cluster-id", "prod-clustr", "examples/manifests/debug.yaml"}, facts...),
			`cluster id "prod-clustr" is named by no BinarySecurityPolicy or OpaStrategy (they name "prod-cluster")`},
		{"workload without containers", append([]string{"check", "--policies", "examples/policies", "--cluster-id", "prod-cluster", noContainers}, facts...),
			noContainers + ":1: Deployment prod/d has no containers (spec.template.spec.containers is empty or missing): nothing was checked"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, "", c.args...)
			if code != 0 || !strings.Contains(errOut, "warning: ") || !strings.Contains(errOut, c.warning) {
				t.Errorf("text: exit %d, want 0 with the warning %q on stderr; stderr:\n%s", code, c.warning, errOut)
			}
			if !strings.Contains(out, "1 warning") {
				t.Errorf("the summary line does not count the warning:\n%s", out)
			}
			_, errOut, code = runCLI(t, "", append(c.args, "--strict")...)
			if code != 1 || !strings.Contains(errOut, "--strict: 1 warning") {
				t.Errorf("--strict: exit %d, want 1; stderr:\n%s", code, errOut)
			}
			out, _, code = runCLI(t, "", append(c.args, "-o", "json")...)
			var got checkJSON
			if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
				t.Fatalf("json: exit %d, %v:\n%s", code, err, out)
			}
			if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], c.warning) {
				t.Errorf("json warnings %q, want one with %q", got.Warnings, c.warning)
			}
		})
	}
	t.Run("no warning when all is well", func(t *testing.T) {
		out, errOut, code := runCLI(t, "", "check", "--policies", "examples/policies", "--facts", "examples/facts.yaml", "--cluster-id", "prod-cluster", "--strict", "-o", "json", "examples/manifests/debug.yaml")
		var got checkJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 || got.Warnings == nil || len(got.Warnings) != 0 || strings.Contains(errOut, "warning") {
			t.Errorf("exit %d, warnings %#v (want []), stderr %q", code, got.Warnings, errOut)
		}
	})
}

// TestCheckOutputFilesAndSummary: every result names its file and line, a
// directory is read recursively (files without a workload skipped), and a
// summary ends the output.
func TestCheckOutputFilesAndSummary(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a/web.yaml":     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\nspec:\n  selector: {}\n  template:\n    spec: {containers: [{name: a, image: registry.example.com/team/legacy:2.3}]}\n",
		"b/c/pods.yml":   "kind: Service\nmetadata: {name: s}\n---\nkind: Pod\nmetadata: {name: debug, namespace: prod, labels: {app.kubernetes.io/part-of: debug}}\nspec: {containers: [{name: d, image: registry.example.com/tools/debug:1.0}]}\n",
		"b/service.json": `{"kind":"Service","metadata":{"name":"only"}}`,
		"notes.txt":      "kind: [ not yaml and not read",
		".hidden/x.yaml": "kind: [ hidden, not read",
		"b/pod-app.yaml": "kind: Pod\nmetadata: {name: app, namespace: prod}\nspec: {containers: [{name: a, image: registry.example.com/team/app:1.0}]}\n",
	})
	args := []string{"check", "--policies", "examples/policies", "--facts", "examples/facts.yaml", "--cluster-id", "prod-cluster", dir}
	out, errOut, code := runCLI(t, "", args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (web is blocked); stderr %s", code, errOut)
	}
	for _, want := range []string{
		"DENIED Deployment prod/web (" + filepath.Join(dir, "a/web.yaml") + ":1)",
		"ALLOWED Pod prod/app (" + filepath.Join(dir, "b/pod-app.yaml") + ":1)",
		"ALLOWED Pod prod/debug (" + filepath.Join(dir, "b/c/pods.yml") + ":4)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; last != "3 resources: 2 allowed, 1 denied; images: 1 pass, 1 allow, 1 block" {
		t.Errorf("summary line %q", last)
	}
	out, _, _ = runCLI(t, "", append(args, "-o", "json")...)
	var got checkJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, r := range got.Results {
		files = append(files, strings.TrimPrefix(r.File, dir+"/"))
	}
	if !slices.Equal(files, []string{"a/web.yaml", "b/c/pods.yml", "b/pod-app.yaml"}) || got.Results[1].Line != 4 {
		t.Errorf("files %q, line of debug %d", files, got.Results[1].Line)
	}
	s := got.Summary
	if s.Resources != 3 || s.Allowed != 2 || s.Denied != 1 || s.Actions["block"] != 1 || s.Actions["pass"] != 1 || s.Actions["allow"] != 1 {
		t.Errorf("summary %+v", s)
	}
	t.Run("empty directory", func(t *testing.T) {
		_, errOut, code := runCLI(t, "", "check", "--policies", "examples/policies", t.TempDir())
		if code != 2 || !strings.Contains(errOut, "no .yaml, .yml or .json file") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
}

// TestCheckJSONBadInput: with -o json, bad input is a JSON error object on
// stdout naming file, line and field, and exit 2.
func TestCheckJSONBadInput(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"typo.yaml":       "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containerz:\n  - {name: a, image: nginx}\n",
		"facts.yaml":      "images:\n  nginx:\n    attestor: [ci-attestor]\n",
		"policies/s.yaml": "apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {name: s}\nspec:\n  strategyId: 1\n  ruleAction: 9\n",
	})
	typo, facts, policies := filepath.Join(dir, "typo.yaml"), filepath.Join(dir, "facts.yaml"), filepath.Join(dir, "policies")
	cases := []struct {
		name        string
		args        []string
		file, field string
		line        int
		msg         string
	}{
		{"manifest unknown field", []string{"--policies", "examples/policies", "--facts", "examples/facts.yaml", typo}, typo, "spec.containerz", 5, `unknown field (did you mean "containers"?)`},
		{"facts unknown field", []string{"--policies", "examples/policies", "--facts", facts, "examples/manifests/web.yaml"}, facts, "images[nginx].attestor", 3, `did you mean "attestors"?`},
		{"invalid policy", []string{"--policies", policies, "examples/manifests/web.yaml"}, filepath.Join(policies, "s.yaml"), "spec.ruleAction", 6, "is not one of"},
		{"missing file", []string{"--policies", "examples/policies", "--facts", "examples/facts.yaml", "nope.yaml"}, "nope.yaml", "", 0, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, "", append([]string{"check", "-o", "json"}, c.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			var got checkJSON
			if err := json.Unmarshal([]byte(out), &got); err != nil || got.Error == nil {
				t.Fatalf("stdout is not a JSON error (%v):\n%s", err, out)
			}
			e := got.Error
			if e.File != c.file || e.Field != c.field || e.Line != c.line || !strings.Contains(e.Message, c.msg) {
				t.Errorf("error %+v, want %s:%d %s …%s…", *e, c.file, c.line, c.field, c.msg)
			}
			if !strings.Contains(errOut, c.msg) {
				t.Errorf("stderr does not say it too: %q", errOut)
			}
		})
	}
}

// TestCheckCouldNotVerify: an image unsigned because its attestor could not
// be checked is shown as unverifiable (text) and with couldNotVerify
// (JSON); the decision stays unsigned and denied.
func TestCheckCouldNotVerify(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"facts.yaml": `images:
  "registry.example.com/team/app:1.0":
    attestorErrors: {ci-attestor: "fetching signatures: registry unreachable or failing: dial tcp: connection refused"}
    unverifiable: [ci-attestor]
  "registry.example.com/team/legacy:2.3":
    attestorErrors: {ci-attestor: "no signatures found"}
`,
		"pod.yaml": "kind: Pod\nmetadata: {name: p, namespace: prod}\nspec:\n  containers:\n  - {name: a, image: registry.example.com/team/app:1.0}\n  - {name: b, image: registry.example.com/team/legacy:2.3}\n",
	})
	args := []string{"check", "--policies", "examples/policies", "--facts", filepath.Join(dir, "facts.yaml"), "--cluster-id", "prod-cluster", filepath.Join(dir, "pod.yaml")}
	out, _, code := runCLI(t, "", args...)
	if code != 1 {
		t.Errorf("exit %d, want 1: could not verify still denies", code)
	}
	for _, want := range []string{
		"  unverifiable registry.example.com/team/app:1.0",
		"could not verify ci-attestor: its signatures could not be checked",
		"  unsigned registry.example.com/team/legacy:2.3",
		"images: 1 unsigned, 1 unverifiable",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = runCLI(t, "", append(args, "-o", "json")...)
	var got checkJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	imgs := got.Results[0].Images
	if imgs[0].Action != "unsigned" || !slices.Equal(imgs[0].CouldNotVerify, []string{"ci-attestor"}) || imgs[1].Action != "unsigned" || imgs[1].CouldNotVerify != nil {
		t.Errorf("images %+v", imgs)
	}
	if got.Summary.Actions["unsigned"] != 2 || got.Summary.CouldNotVerify != 1 {
		t.Errorf("summary %+v", got.Summary)
	}
}
