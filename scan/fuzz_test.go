package scan_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imagegate/imagegate/scan"
)

// FuzzParse: any report (Trivy JSON, trivy-operator VulnerabilityReport,
// malicious feed, or whatever else is posted to the scans endpoint) is
// parsed or refused, never a panic; a parsed record names its image.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"ArtifactName":"a:1","Metadata":{"RepoDigests":["a@sha256:00"]},"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":"HIGH"}]}]}`))
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []string{scan.FormatAuto, scan.FormatTrivy, scan.FormatOperator, scan.FormatFeed} {
			recs, _, err := scan.Parse(format, data, now)
			if err != nil {
				continue
			}
			for _, r := range recs {
				if r == nil || r.Digest == "" && r.Ref == "" {
					t.Fatalf("%s: a record naming no image: %+v", format, r)
				}
			}
		}
	})
}
