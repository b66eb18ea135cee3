package attestation_test

import (
	"context"
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// trivyReport is a Trivy JSON report with n os-pkgs vulnerabilities, shaped
// as `trivy image -f json` writes them (the fields imagegate ignores too).
func trivyReport(n int) json.RawMessage {
	vulns := make([]map[string]any, n)
	sev := []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}
	for i := range vulns {
		vulns[i] = map[string]any{
			"VulnerabilityID": fmt.Sprintf("CVE-2024-%05d", i), "PkgName": fmt.Sprintf("lib%d", i),
			"InstalledVersion": "1.2.3-r0", "FixedVersion": "1.2.4-r0", "Severity": sev[i%len(sev)],
			"Title":       fmt.Sprintf("lib%d: a flaw in parsing", i),
			"Description": "A flaw was found in the parser that allows a remote attacker to cause a denial of service.",
			"References":  []string{"https://nvd.nist.gov/vuln/detail/CVE-2024-" + fmt.Sprint(i)},
		}
	}
	b, _ := json.Marshal(map[string]any{
		"SchemaVersion": 2, "CreatedAt": "2026-11-22T10:00:30Z", "ArtifactName": "app", "ArtifactType": "container_image",
		"Results": []map[string]any{{"Target": "app (alpine 3.20)", "Class": "os-pkgs", "Type": "alpine", "Vulnerabilities": vulns}},
	})
	return b
}

// BenchmarkFactsWarmVulnAttestation is a warm admission of an image whose
// scan comes from a verified vulnerability attestation: signatures,
// attestation and verdict are cached, so what is left is turning the
// cached outcome into the image's facts.
func BenchmarkFactsWarmVulnAttestation(b *testing.B) {
	for _, n := range []int{1, 200} {
		b.Run(fmt.Sprintf("findings=%d", n), func(b *testing.B) {
			reg := at.NewRegistry(b)
			scanner := at.ECKey(b, elliptic.P256())
			ref, d := reg.Push(b, "app", "v1")
			reg.Attest(b, "app", d, scanner, attestation.VulnPredicateType, map[string]any{
				"scanner":  map[string]any{"uri": "pkg:github/aquasecurity/trivy@0.50.0", "version": "0.50.0", "result": trivyReport(n)},
				"metadata": map[string]any{"scanStartedOn": "2026-11-22T10:00:00Z", "scanFinishedOn": "2026-11-22T10:01:00Z"},
			})
			v, err := attestation.New(attestation.WithAttestations(true))
			if err != nil {
				b.Fatal(err)
			}
			src := attestation.NewSource(v, nil)
			req := facts.Request{Images: []workload.Image{workload.ParseImage(ref)},
				ScanAttestors: []*policy.Attestor{at.KeyAttestor(b, "scanner", scanner)}}
			ctx := context.Background()
			if fs, err := src.Facts(ctx, req); err != nil || fs[0].Scan == nil || len(fs[0].Scan.Findings) != n {
				b.Fatalf("cold admission: %v %+v", err, fs)
			}
			reg.Reset()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				fs, err := src.Facts(ctx, req)
				if err != nil || fs[0].Scan == nil || len(fs[0].Scan.Findings) != n {
					b.Fatalf("warm admission: %v %+v", err, fs)
				}
			}
			b.StopTimer()
			if c := reg.Count("/v2/"); c != 0 {
				b.Fatalf("warm admissions made %d registry requests", c)
			}
		})
	}
}
