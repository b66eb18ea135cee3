package facts_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/workload"
)

// TestLoadFileStrict: every mistake in a facts file names file, line and
// field, so a misspelt key cannot leave an image silently unsigned.
func TestLoadFileStrict(t *testing.T) {
	cases := []struct {
		name, doc string
		line      int
		path, msg string
	}{
		{"unknown top level", "image:\n  nginx: {}\n", 1, "image", `unknown field (did you mean "images"?)`},
		{"unknown image field", "images:\n  nginx:\n    attestor: [ci]\n", 3, "images[nginx].attestor", `did you mean "attestors"?`},
		{"unknown scan field", "images:\n  nginx:\n    scan:\n      scannedat: 2026-01-01T00:00:00Z\n", 4, "images[nginx].scan.scannedat", `did you mean "scannedAt"?`},
		{"wrong type", "images:\n  nginx:\n    attestors: ci\n", 3, "images[nginx].attestors", "expected a list"},
		{"wrong scalar", "images:\n  nginx:\n    scan: {malicious: maybe}\n", 3, "images[nginx].scan.malicious", "expected true or false"},
		{"bad category", "images:\n  nginx:\n    scan:\n      findings:\n      - {category: Vuln, id: x, level: high}\n", 5, "images[nginx].scan.findings[0].category", `"Vuln" is not one of`},
		{"bad level", "images:\n  nginx:\n    scan:\n      findings:\n      -\n        category: Vul\n        id: x\n        level: severe\n", 8, "images[nginx].scan.findings[0].level", `"severe" is not one of`},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
			if err := os.WriteFile(file, []byte(c.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := facts.LoadFile(file)
			var fe *facts.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T), want a *facts.FieldError", err, err)
			}
			if fe.File != file || fe.Line != c.line || fe.Path != c.path || !strings.Contains(fe.Msg, c.msg) {
				t.Errorf("got %s:%d %s: %s\nwant line %d %s: …%s…", fe.File, fe.Line, fe.Path, fe.Msg, c.line, c.path, c.msg)
			}
			if !strings.HasPrefix(err.Error(), file+":") {
				t.Errorf("message %q does not start with the file", err)
			}
		})
	}
}

func TestLoadFileLookup(t *testing.T) {
	f, err := facts.ParseFile([]byte(`images:
  "registry.example.com/app:1.0":
    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
    attestors: [ci]
    unverifiable: [qa]
    scan:
      scannedAt: 2026-11-01T00:00:00Z
      findings: [{category: vul, id: CVE-1, level: Critical}]
`))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"registry.example.com/app:1.0": true, // as written
		"registry.example.com/app@sha256:1111111111111111111111111111111111111111111111111111111111111111": true, // by digest
		"registry.example.com/app:2.0": false,
	}
	for ref, known := range cases {
		t.Run(ref, func(t *testing.T) {
			got := f.Lookup(workload.ParseImage(ref))
			if (len(got.Attestors) > 0) != known {
				t.Fatalf("lookup %q: %+v", ref, got)
			}
			if known && (got.Scan.Findings[0].Category != facts.Vul || got.Scan.Findings[0].Level != "high" || got.Unverifiable[0] != "qa" || got.Scan.ScannedAt.IsZero()) {
				t.Errorf("not normalized: %+v %+v", got, got.Scan)
			}
		})
	}
}
