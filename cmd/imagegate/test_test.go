package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTestCommand runs imagegate test on the shipped examples and on test
// files written to fail in each way: a wrong expectation is exit 1 with a
// want/got diff, a bad test file exit 2 naming file, line and field.
func TestTestCommand(t *testing.T) {
	abs, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	header := "apiVersion: imagegate.dev/v1alpha1\nkind: Test\nmetadata: {name: t}\npolicies: [" + abs + "/policies]\nfacts: " + abs + "/facts.yaml\nclusterId: prod-cluster\nresources: [" + abs + "/manifests/web.yaml]\n"
	cases := []struct {
		name string
		body string // the test file; empty: run examples/
		code int
		want []string
	}{
		{"examples pass", "", 0, []string{"2 tests, 16 expectations: 16 passed, 0 failed"}},
		{"wrong action", header + "expect:\n- resource: Deployment/prod/web\n  allowed: false\n  images:\n  - {image: registry.example.com/team/legacy:2.3, action: pass, strategies: [1005]}\n", 1,
			[]string{"FAIL Deployment/prod/web image registry.example.com/team/legacy:2.3 action", "- want pass", "+ got  block", "1 test, 3 expectations: 2 passed, 1 failed"}},
		{"wrong allowed and strategies", header + "expect:\n- resource: Deployment/prod/web\n  allowed: true\n  images:\n  - {image: registry.example.com/team/legacy:2.3, strategies: [1005, 1006]}\n", 1,
			[]string{"FAIL Deployment/prod/web allowed", "- want true", "+ got  false", "- want [1005, 1006]", "+ got  [1005]", "0 passed, 2 failed"}},
		{"resource not decided", header + "expect:\n- {resource: Deployment/dev/web, allowed: true}\n", 1,
			[]string{"FAIL Deployment/dev/web resource", "the resources are Deployment/prod/web"}},
		{"image not in resource", header + "expect:\n- resource: Deployment/prod/web\n  images: [{image: nginx, action: pass}]\n", 1,
			[]string{"FAIL Deployment/prod/web image nginx", "the images are registry.example.com/team/app:1.0, registry.example.com/team/legacy:2.3"}},
		{"unknown field", header + "expect:\n- resource: Deployment/prod/web\n  alowed: true\n", 2,
			[]string{"imagegate-test.yaml:10: expect[0].alowed: unknown field (did you mean \"allowed\"?)", "1 with bad input"}},
		{"bad resource and action", header + "expect:\n- resource: web\n  images: [{image: x, action: deny}]\n", 2,
			[]string{"imagegate-test.yaml:9: expect[0].resource: \"web\": expected Kind/namespace/name", "expect[0].images[0].action: \"deny\" is not one of"}},
		{"wrong kind", strings.Replace(header, "kind: Test", "kind: Tset", 1) + "expect: [{resource: a/b/c, allowed: true}]\n", 2,
			[]string{"imagegate-test.yaml:2: kind: expected \"Test\", got \"Tset\""}},
		{"missing policies", "apiVersion: imagegate.dev/v1alpha1\nkind: Test\nmetadata: {name: t}\npolicies: [nope]\nresources: [x.yaml]\nexpect: [{resource: a/b/c, allowed: true}]\n", 2,
			[]string{"ERROR", "nope"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := "examples/"
			if c.body != "" {
				tmp := t.TempDir()
				writeFiles(t, tmp, map[string]string{"sub/imagegate-test.yaml": c.body, "ignored.yaml": "kind: [ not a test file"})
				dir = tmp
			}
			out, errOut, code := runCLI(t, "", "test", dir)
			if code != c.code {
				t.Errorf("exit %d, want %d\n%s%s", code, c.code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("no test files", func(t *testing.T) {
		_, errOut, code := runCLI(t, "", "test", t.TempDir())
		if code != 2 || !strings.Contains(errOut, "no imagegate-test.yaml") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
}

// TestVersion: the module version and revision a build stamps, and the
// -ldflags -X override image builds use.
func TestVersion(t *testing.T) {
	out, _, code := runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "imagegate ") || !strings.Contains(out, "(revision ") || !strings.Contains(out, "go1.") {
		t.Errorf("exit %d: %q", code, out)
	}
	bin := filepath.Join(t.TempDir(), "imagegate")
	pkg := "github.com/imagegate/imagegate/internal/version"
	if b, err := exec.Command("go", "build", "-o", bin, "-ldflags", "-X "+pkg+".Version=v1.2.3 -X "+pkg+".Revision=0123abc", ".").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	got, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(got), "imagegate v1.2.3 (revision 0123abc, go1.") {
		t.Errorf("%v: %q", err, got)
	}
}
