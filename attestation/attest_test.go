package attestation_test

import (
	"context"
	"crypto/elliptic"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

const trivyResult = `{"SchemaVersion":2,"ArtifactName":"x","Results":[{"Target":"x","Class":"os-pkgs","Vulnerabilities":[{"VulnerabilityID":"CVE-2024-3094","Severity":"CRITICAL"}]}]}`

func vulnPredicate() map[string]any {
	return map[string]any{
		"invocation": map[string]any{"uri": "ci"},
		"scanner":    map[string]any{"uri": "pkg:github/aquasecurity/trivy@0.50.0", "version": "0.50.0", "result": json.RawMessage(trivyResult)},
		"metadata":   map[string]any{"scanStartedOn": "2026-11-22T10:00:00Z", "scanFinishedOn": "2026-11-22T10:01:00Z"},
	}
}

func TestVulnAttestations(t *testing.T) {
	reg := at.NewRegistry(t)
	scanner, other := at.ECKey(t, elliptic.P256()), at.ECKey(t, elliptic.P256())
	_, good := reg.Push(t, "app", "good")
	reg.Attest(t, "app", good, scanner, attestation.VulnPredicateType, vulnPredicate())
	_, wrong := reg.Push(t, "app", "wrong-signer")
	reg.Attest(t, "app", wrong, other, attestation.VulnPredicateType, vulnPredicate())
	_, elsewhere := reg.Push(t, "app", "about-another")
	reg.Attest(t, "app", elsewhere, scanner, attestation.VulnPredicateType, vulnPredicate())
	_, none := reg.Push(t, "app", "none")
	_, otherType := reg.Push(t, "app", "slsa")
	reg.Attest(t, "app", otherType, scanner, "https://slsa.dev/provenance/v0.2", map[string]any{})

	v, err := attestation.New(attestation.WithAttestations(true))
	if err != nil {
		t.Fatal(err)
	}
	src := attestation.NewSource(v, nil)
	scanAtt := at.KeyAttestor(t, "scanner", scanner)
	get := func(digest string) *facts.Image {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fs, err := src.Facts(ctx, facts.Request{Images: []workload.Image{workload.ParseImage(reg.Host + "/app@" + digest)}, ScanAttestors: []*policy.Attestor{scanAtt}})
		if err != nil {
			t.Fatal(err)
		}
		return fs[0]
	}
	if f := get(good); f.Scan == nil || len(f.Scan.Findings) != 1 || f.Scan.Findings[0].Level != "high" || f.Scan.Findings[0].Class != "cve" ||
		!strings.Contains(f.Scan.Source, "scanner") || f.Scan.ScannedAt.Format(time.RFC3339) != "2026-11-22T10:01:00Z" {
		t.Errorf("good: %+v %+v", f, f.Scan)
	}
	if f := get(wrong); f.Scan != nil || !strings.Contains(f.ScanNote, `not signed by attestor "scanner"`) {
		t.Errorf("wrong signer: %+v", f)
	}
	if f := get(none); f.Scan != nil || f.ScanNote != "" {
		t.Errorf("none: %+v", f)
	}
	if f := get(otherType); f.Scan != nil || !strings.Contains(f.ScanNote, "is not "+attestation.VulnPredicateType) {
		t.Errorf("other predicate: %+v", f)
	}
	// A scan attestor's transparencyLog rule holds for attestations as for
	// signatures: an attestation with no Rekor entry is not accepted.
	strict := at.KeyAttestor(t, "scanner", scanner)
	strict.Spec.TransparencyLog = "required"
	fs, err := src.Facts(context.Background(), facts.Request{Images: []workload.Image{workload.ParseImage(reg.Host + "/app@" + good)}, ScanAttestors: []*policy.Attestor{strict}})
	if err != nil {
		t.Fatal(err)
	}
	if f := fs[0]; f.Scan != nil || !strings.Contains(f.ScanNote, "transparencyLog is required") {
		t.Errorf("transparencyLog required: %+v", f)
	}
	// The attestation of one image, copied onto another, is about the wrong digest.
	_, copied := reg.Push(t, "app", "copied")
	reg.Copy(t, reg.Host+"/app:"+strings.Replace(good, ":", "-", 1)+".att", reg.Host+"/app:"+strings.Replace(copied, ":", "-", 1)+".att")
	if f := get(copied); f.Scan != nil || !strings.Contains(f.ScanNote, "no matching subject digest") {
		t.Errorf("copied: %+v", f)
	}
	// Signatures and attestations come in one fetch, once.
	reg.Reset()
	get(good)
	if n := reg.Count("/v2/"); n != 0 {
		t.Errorf("a cached image made %d registry requests", n)
	}
}

// A warm admission of an image takes its scan from the parsed report cached
// with the verified attestation: the findings it gets are the very slice the
// first admission got (parsing again would make a new one), in a Scan of its
// own.
func TestVulnAttestationFindingsParsedOnce(t *testing.T) {
	reg := at.NewRegistry(t)
	scanner := at.ECKey(t, elliptic.P256())
	ref, d := reg.Push(t, "app", "v1")
	reg.Attest(t, "app", d, scanner, attestation.VulnPredicateType, vulnPredicate())
	v, err := attestation.New(attestation.WithAttestations(true))
	if err != nil {
		t.Fatal(err)
	}
	src := attestation.NewSource(v, nil)
	req := facts.Request{Images: []workload.Image{workload.ParseImage(ref)}, ScanAttestors: []*policy.Attestor{at.KeyAttestor(t, "scanner", scanner)}}
	var scans []*facts.Scan
	for i := 0; i < 3; i++ {
		fs, err := src.Facts(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if s := fs[0].Scan; s == nil || len(s.Findings) != 1 || s.Findings[0].ID != "CVE-2024-3094" {
			t.Fatalf("admission %d: %+v", i, fs[0])
		}
		scans = append(scans, fs[0].Scan)
	}
	for i, s := range scans[1:] {
		if &s.Findings[0] != &scans[0].Findings[0] {
			t.Errorf("warm admission %d parsed the report again (a new findings slice)", i+1)
		}
		if s == scans[0] {
			t.Errorf("warm admission %d shares the first admission's *facts.Scan", i+1)
		}
	}
	// Images of one admission are checked concurrently; the same image
	// twice shares the cached findings too.
	twice := req
	twice.Images = []workload.Image{req.Images[0], req.Images[0]}
	fs, err := src.Facts(context.Background(), twice)
	if err != nil || fs[0].Scan == nil || fs[1].Scan == nil || &fs[0].Scan.Findings[0] != &scans[0].Findings[0] || &fs[1].Scan.Findings[0] != &scans[0].Findings[0] {
		t.Errorf("one image twice: %v %+v %+v", err, fs[0], fs[1])
	}
	// The parsed report is remembered per scan-attestor set, like the
	// verdict: a policy naming another scan attestor does not get it.
	other := at.KeyAttestor(t, "scanner2", at.ECKey(t, elliptic.P256()))
	req.ScanAttestors = []*policy.Attestor{other}
	fs, err = src.Facts(context.Background(), req)
	if err != nil || fs[0].Scan != nil || !strings.Contains(fs[0].ScanNote, `not signed by attestor "scanner2"`) {
		t.Errorf("other scan attestor: %v %+v", err, fs[0])
	}
}

// The time a cached scan was made is what it would be if the report were
// parsed again: the attestation's scanFinishedOn, else the report's
// CreatedAt, else — for a report that does not say — each admission's now,
// not the first admission's (which would make the scan age in the cache and
// go stale under --max-scan-age, or lose to an older scan-store record).
func TestVulnAttestationScanTime(t *testing.T) {
	reg := at.NewRegistry(t)
	scanner := at.ECKey(t, elliptic.P256())
	v, err := attestation.New(attestation.WithAttestations(true))
	if err != nil {
		t.Fatal(err)
	}
	src := attestation.NewSource(v, nil)
	scanAtt := at.KeyAttestor(t, "scanner", scanner)
	report := func(createdAt string) json.RawMessage {
		r := map[string]any{"SchemaVersion": 2, "Results": []any{}}
		if createdAt != "" {
			r["CreatedAt"] = createdAt
		}
		b, _ := json.Marshal(r)
		return b
	}
	for _, c := range []struct {
		name, finished, created string
		want                    string // RFC 3339; "now": the admission's time
	}{
		{"scanFinishedOn", "2026-11-22T10:01:00Z", "2026-11-22T09:00:00Z", "2026-11-22T10:01:00Z"},
		{"report CreatedAt", "", "2026-11-22T09:00:00.5Z", "2026-11-22T09:00:00.5Z"},
		{"unparsable scanFinishedOn", "soon", "2026-11-22T09:00:00Z", "2026-11-22T09:00:00Z"},
		{"zero CreatedAt", "", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},
		{"undated", "", "", "now"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref, d := reg.Push(t, "app", strings.ReplaceAll(c.name, " ", "-"))
			reg.Attest(t, "app", d, scanner, attestation.VulnPredicateType, map[string]any{
				"scanner":  map[string]any{"uri": "pkg:github/aquasecurity/trivy@0.50.0", "result": report(c.created)},
				"metadata": map[string]any{"scanFinishedOn": c.finished},
			})
			req := facts.Request{Images: []workload.Image{workload.ParseImage(ref)}, ScanAttestors: []*policy.Attestor{scanAtt}}
			for i := 0; i < 2; i++ { // cold, then warm
				if i > 0 {
					time.Sleep(2 * time.Millisecond) // a warm "now" differs from the cold one
				}
				before := time.Now()
				fs, err := src.Facts(context.Background(), req)
				after := time.Now()
				if err != nil || fs[0].Scan == nil {
					t.Fatalf("admission %d: %v %+v", i, err, fs)
				}
				got := fs[0].Scan.ScannedAt
				if c.want == "now" {
					if got.Before(before) || got.After(after) {
						t.Errorf("admission %d: scanned at %v, want between %v and %v", i, got, before, after)
					}
					continue
				}
				if got.Format(time.RFC3339Nano) != c.want {
					t.Errorf("admission %d: scanned at %v, want %s", i, got, c.want)
				}
			}
		})
	}
}

// A verified attestation whose report is not one imagegate reads is set
// aside with the same note on a warm admission as on a cold one.
func TestVulnAttestationUnreadableReport(t *testing.T) {
	reg := at.NewRegistry(t)
	scanner := at.ECKey(t, elliptic.P256())
	v, err := attestation.New(attestation.WithAttestations(true))
	if err != nil {
		t.Fatal(err)
	}
	src := attestation.NewSource(v, nil)
	for _, c := range []struct{ name, result, want string }{
		{"old schema", `{"SchemaVersion":1}`, `vulnerability attestation by scanner ignored: Trivy report schema version 1`},
		{"unknown severity", `{"SchemaVersion":2,"Results":[{"Class":"os-pkgs","Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":"SEVERE"}]}]}`,
			`Results[0].Vulnerabilities[0].Severity: unknown severity "SEVERE"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref, d := reg.Push(t, "app", strings.ReplaceAll(c.name, " ", "-"))
			reg.Attest(t, "app", d, scanner, attestation.VulnPredicateType, map[string]any{
				"scanner": map[string]any{"uri": "pkg:github/aquasecurity/trivy@0.50.0", "result": json.RawMessage(c.result)},
			})
			req := facts.Request{Images: []workload.Image{workload.ParseImage(ref)}, ScanAttestors: []*policy.Attestor{at.KeyAttestor(t, "scanner", scanner)}}
			for i := 0; i < 2; i++ { // cold, then warm
				fs, err := src.Facts(context.Background(), req)
				if err != nil || fs[0].Scan != nil || !strings.Contains(fs[0].ScanNote, c.want) {
					t.Errorf("admission %d: %v %+v, want note %q", i, err, fs[0], c.want)
				}
			}
		})
	}
}
