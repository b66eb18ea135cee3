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
	if f := get(copied); f.Scan != nil || !strings.Contains(f.ScanNote, "about another image digest") {
		t.Errorf("copied: %+v", f)
	}
	// Signatures and attestations come in one fetch, once.
	reg.Reset()
	get(good)
	if n := reg.Count("/v2/"); n != 0 {
		t.Errorf("a cached image made %d registry requests", n)
	}
}
