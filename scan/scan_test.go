package scan_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/scan"
	"github.com/imagegate/imagegate/workload"
)

var now = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseTrivyMapping(t *testing.T) {
	rec, err := scan.ParseTrivy(read(t, "trivy-full.json"), now)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Digest != "sha256:1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3" || rec.Ref != "registry.example.com/shop/cart:2.1" {
		t.Errorf("keys: %q %q", rec.Digest, rec.Ref)
	}
	if rec.Scan.ScannedAt.Format(time.RFC3339) != "2026-11-20T10:00:00Z" || rec.Scan.Source != "trivy" {
		t.Errorf("scan: %v %q", rec.Scan.ScannedAt, rec.Scan.Source)
	}
	var got []string
	for _, f := range rec.Scan.Findings {
		got = append(got, f.Category+" "+f.ID+" "+f.Level+" "+f.Class)
	}
	want := []string{
		"Vul CVE-2024-3094 high cve", "Vul CVE-2023-4911 high cve", "Vul CVE-2023-5678 medium cve", "Vul CVE-2022-0001 low cve", "Vul CVE-2021-9999 low cve",
		"Vul GHSA-xxxx-yyyy-zzzz high app",
		"SensitiveFile aws-access-key-id high ", "Baseline ak_leak high ", "SensitiveFile private-key high ",
		"BuildRisk DS002 high ", "BuildRisk DS026 low ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n got %q\nwant %q", got, want)
	}
}

func TestParseTrivyEdges(t *testing.T) {
	clean, err := scan.ParseTrivy(read(t, "trivy-clean.json"), now)
	if err != nil || len(clean.Scan.Findings) != 0 || clean.Digest != "sha256:"+strings.Repeat("a", 64) {
		t.Errorf("clean: %+v %v", clean, err)
	}
	tagOnly, err := scan.ParseTrivy(read(t, "trivy-tag-only.json"), now)
	if err != nil || tagOnly.Digest != "" || tagOnly.Ref != "index.docker.io/library/nginx:1.25" || !tagOnly.Scan.ScannedAt.Equal(now) {
		t.Errorf("tag only: %+v %v", tagOnly, err)
	}
	for _, c := range []struct{ name, data, want string }{
		{"truncated", `{"SchemaVersion": 2, "Results": [`, "not a Trivy JSON report"},
		{"not json", `hello`, "not a Trivy JSON report"},
		{"old schema", `{"SchemaVersion": 1}`, "schema version 1"},
		{"no image", `{"SchemaVersion": 2, "Results": []}`, "names no image digest and no image reference"},
		{"unknown severity", string(read(t, "trivy-bad-severity.json")), `Results[0].Vulnerabilities[0].Severity: unknown severity "SEVERE"`},
	} {
		if _, err := scan.ParseTrivy([]byte(c.data), now); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestParseVulnerabilityReportAndFeed(t *testing.T) {
	rec, err := scan.ParseVulnerabilityReport(read(t, "vulnerabilityreport.yaml"), now)
	if err != nil || rec.Digest != "sha256:"+strings.Repeat("b", 64) || rec.Ref != "registry.example.com/shop/api:3.0" || len(rec.Scan.Findings) != 2 || rec.Scan.Findings[0].Level != "high" {
		t.Errorf("%+v %v", rec, err)
	}
	if _, err := scan.ParseVulnerabilityReport([]byte("kind: ConfigAuditReport\napiVersion: aquasecurity.github.io/v1alpha1\n"), now); err == nil {
		t.Error("wrong kind accepted")
	}
	feed, err := scan.ParseMaliciousFeed(read(t, "malicious.txt"))
	if err != nil || len(feed) != 2 || feed["sha256:"+strings.Repeat("c", 64)] != "cryptominer found in the wild" {
		t.Errorf("%v %v", feed, err)
	}
	js, err := scan.ParseMaliciousFeed([]byte(`[{"digest": "sha256:` + strings.Repeat("e", 64) + `", "reason": "typosquat"}, "sha256:` + strings.Repeat("f", 64) + `"]`))
	if err != nil || js["sha256:"+strings.Repeat("e", 64)] != "typosquat" || len(js) != 2 {
		t.Errorf("%v %v", js, err)
	}
	if _, err := scan.ParseMaliciousFeed([]byte("sha256:nothex\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad line: %v", err)
	}
}

// Imported reports reach a decision: round trip through the store, a reader
// that sees new imports, and the engine.
func TestImportRoundTripThroughDecision(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scans.db")
	reader, err := scan.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	const strategies = `
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: no-critical-system-vulns}
spec: {strategyId: 1, ruleAction: 2, alarmDetail: {vul: {riskLevel: [high], riskClass: [{id: cve}]}}}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: unscanned}
spec: {strategyId: 2, ruleAction: 1, unScanedImage: true}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: leaked-keys}
spec: {strategyId: 3, ruleAction: 2, alarmDetail: {baseline: {item: [{id: ak_leak}]}}}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: malicious}
spec: {strategyId: 4, ruleAction: 2, maliciousImage: true}
`
	objs, _ := policy.Parse("s.yaml", []byte(strategies))
	snap, err := policy.NewSnapshot(objs...)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := rego.New(context.Background(), snap, rego.WithMaxScanAge(30*24*time.Hour), rego.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	decider := admission.NewDecider(admission.Static{E: engine}, scan.NewSource(reader.Index()))
	decide := func(image string) *rego.ImageDecision {
		t.Helper()
		obj := &workload.Object{Kind: "Pod", Namespace: "default", Images: []workload.Image{workload.ParseImage(image)}}
		d, err := decider.Decide(context.Background(), obj)
		if err != nil {
			t.Fatal(err)
		}
		return &d.Images[0]
	}
	cart := "registry.example.com/shop/cart@sha256:1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3"
	if d := decide(cart); d.Action != "alert" {
		t.Fatalf("before import: %+v", d)
	}
	full, _ := scan.ParseTrivy(read(t, "trivy-full.json"), now)
	feed, _ := scan.ParseMaliciousFeed(read(t, "malicious.txt"))
	if err := scan.Import(path, []*scan.Record{full}, feed); err != nil {
		t.Fatal(err)
	}
	if changed, err := reader.Refresh(); err != nil || !changed {
		t.Fatalf("refresh: %v %v", changed, err)
	}
	d := decide(cart)
	if d.Action != "block" || !slices.Equal(d.Strategies, []int64{1, 3}) {
		t.Errorf("after import: %+v", d)
	}
	if !strings.Contains(strings.Join(d.Reasons, "\n"), `blocked by strategy 1 "no-critical-system-vulns": Vul CVE-2024-3094 (high), Vul CVE-2023-4911 (high)`) {
		t.Errorf("reasons %q", d.Reasons)
	}
	if d := decide("registry.example.com/shop/cart:2.1"); d.Action != "block" {
		t.Errorf("by tag: %+v", d)
	}
	if d := decide("registry.example.com/x@sha256:" + strings.Repeat("c", 64)); d.Action != "block" || !slices.Contains(d.Strategies, 4) || !slices.Contains(d.Strategies, 2) {
		t.Errorf("malicious digest, never scanned: %+v", d)
	}
	// A scan older than --max-scan-age counts as unscanned.
	old, _ := scan.ParseTrivy(read(t, "trivy-clean.json"), now)
	old.Scan.ScannedAt = now.Add(-60 * 24 * time.Hour)
	scan.Import(path, []*scan.Record{old}, nil)
	reader.Refresh()
	if d := decide("registry.example.com/shop/web@sha256:" + strings.Repeat("a", 64)); d.Action != "alert" || !slices.Equal(d.Strategies, []int64{2}) {
		t.Errorf("stale scan: %+v", d)
	}
}

func TestImportIsAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scans.db")
	good, _ := scan.ParseTrivy(read(t, "trivy-full.json"), now)
	if err := scan.Import(path, []*scan.Record{good, {}}, nil); err == nil {
		t.Fatal("a record naming no image was accepted")
	}
	r, err := scan.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.Index().Len(); n != 0 {
		t.Errorf("a failed import left %d records", n)
	}
}

// ParseTrivyFindings and ParseTrivyFindingsDated agree on every report: the
// dated form only leaves the fallback to now for its caller to fill in.
func TestParseTrivyFindingsDated(t *testing.T) {
	for _, c := range []struct {
		name, data string
		dated      bool
		at         time.Time // ScannedAt from ParseTrivyFindings(data, now)
	}{
		{"created", `{"SchemaVersion":2,"CreatedAt":"2026-11-20T10:00:00.5+02:00","Results":[]}`, true, time.Date(2026, 11, 20, 8, 0, 0, 5e8, time.UTC)},
		{"no time", `{"SchemaVersion":2,"Results":[]}`, false, now},
		{"unparsable time", `{"SchemaVersion":2,"CreatedAt":"yesterday","Results":[]}`, false, now},
		// Go's zero time, as a report writer that never set it prints it, is
		// a time (the zero one), not the absence of one.
		{"zero time", `{"SchemaVersion":2,"CreatedAt":"0001-01-01T00:00:00Z","Results":[]}`, true, time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, dated, err := scan.ParseTrivyFindingsDated([]byte(c.data))
			if err != nil {
				t.Fatal(err)
			}
			want := c.at
			if !c.dated {
				want = time.Time{}
			}
			if dated != c.dated || !s.ScannedAt.Equal(want) {
				t.Errorf("dated form: %v %v, want %v %v", s.ScannedAt, dated, want, c.dated)
			}
			s, err = scan.ParseTrivyFindings([]byte(c.data), now)
			if err != nil || !s.ScannedAt.Equal(c.at) || s.ScannedAt.Location() != time.UTC {
				t.Errorf("with now: %v %v, want %v (UTC)", s.ScannedAt, err, c.at)
			}
		})
	}
	if _, _, err := scan.ParseTrivyFindingsDated([]byte(`{"SchemaVersion":1}`)); err == nil || !strings.Contains(err.Error(), "schema version 1") {
		t.Errorf("old schema: %v", err)
	}
}

// OnChange names the keys each refresh applied, and nothing for a refresh
// that found no writes.
func TestReaderOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scans.db")
	reader, err := scan.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	reader.OnChange(func(keys []string) { got = append(got, keys) })
	d := "sha256:" + strings.Repeat("d", 64)
	if err := scan.Import(path, nil, map[string]string{d: "bad"}); err != nil {
		t.Fatal(err)
	}
	reader.Refresh()
	reader.Refresh()
	if len(got) != 1 || !slices.Equal(got[0], []string{"m:" + d}) {
		t.Errorf("keys %q, want one refresh naming m:%s", got, d)
	}
}
