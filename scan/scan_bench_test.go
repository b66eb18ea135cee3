package scan_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/scan"
	"github.com/imagegate/imagegate/workload"
)

// trivyReport builds a Trivy report with n vulnerabilities (about 250 bytes
// each, so n = 20,000 is a 5 MB report).
func trivyReport(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"SchemaVersion":2,"CreatedAt":"2026-11-20T10:00:00Z","ArtifactName":"registry.example.com/big/app:1","Metadata":{"RepoDigests":["registry.example.com/big/app@sha256:` +
		fmt.Sprintf("%064x", n) + `"]},"Results":[{"Target":"app","Class":"os-pkgs","Type":"debian","Vulnerabilities":[`)
	sev := []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"VulnerabilityID":"CVE-2024-%05d","PkgName":"package-%d","InstalledVersion":"1.2.3-4","FixedVersion":"1.2.3-5","Severity":%q,"Title":"A vulnerability title that is about as long as real ones are, %d"}`, i, i%500, sev[i%4], i)
	}
	b.WriteString(`]}]}`)
	return b.Bytes()
}

func BenchmarkImport5MBReport(b *testing.B) {
	report := trivyReport(20000)
	dir := b.TempDir()
	b.ResetTimer()
	defer func() { b.ReportMetric(float64(len(report))/1e6, "MB/report") }()
	for i := 0; i < b.N; i++ {
		recs, _, err := scan.Parse(scan.FormatAuto, report, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if err := scan.Import(filepath.Join(dir, fmt.Sprintf("s%d.db", i)), recs, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// index100k holds 100,000 images with 30 findings each, drawn from a shared
// pool of vulnerability ids as real fleets are.
func index100k(b *testing.B) (*scan.Index, []workload.Image) {
	b.Helper()
	dir := b.TempDir()
	path := filepath.Join(dir, "scans.db")
	var imgs []workload.Image
	const n, batch = 100000, 5000
	for start := 0; start < n; start += batch {
		var recs []*scan.Record
		for i := start; i < start+batch; i++ {
			d := fmt.Sprintf("sha256:%064x", i)
			s := facts.Scan{ScannedAt: time.Now(), Source: "trivy"}
			for j := 0; j < 30; j++ {
				s.Findings = append(s.Findings, facts.Finding{Category: facts.Vul, ID: fmt.Sprintf("CVE-2024-%05d", (i*7+j*131)%20000), Level: "medium", Class: "cve", Name: fmt.Sprintf("package-%d", j)})
			}
			recs = append(recs, &scan.Record{Digest: d, Scan: s})
			if i%1000 == 0 {
				imgs = append(imgs, workload.ParseImage("registry.example.com/app@"+d))
			}
		}
		if err := scan.Import(path, recs, nil); err != nil {
			b.Fatal(err)
		}
	}
	r, err := scan.OpenReader(path)
	if err != nil {
		b.Fatal(err)
	}
	return r.Index(), imgs
}

func BenchmarkLookup(b *testing.B) {
	idx, imgs := index100k(b)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap := float64(ms.HeapAlloc) / (1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s, _ := idx.Lookup(imgs[i%len(imgs)], ""); s == nil {
			b.Fatal("missing")
		}
	}
	b.ReportMetric(heap, "heap-MB-100k-images")
}
