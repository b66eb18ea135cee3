package attestation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/scan"
)

// VulnPredicateType is cosign's vulnerability attestation predicate.
const VulnPredicateType = "https://cosign.sigstore.dev/attestation/vuln/v1"

// statement is an in-toto statement, read from an envelope the libraries
// verified.
type statement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// VulnPredicate is the part of a vuln/v1 predicate imagegate reads: the
// scanner's report (a Trivy JSON report when the scanner is Trivy).
type VulnPredicate struct {
	Scanner struct {
		URI     string          `json:"uri"`
		Version string          `json:"version"`
		Result  json.RawMessage `json:"result"`
	} `json:"scanner"`
	Metadata struct {
		ScanFinishedOn string `json:"scanFinishedOn"`
	} `json:"metadata"`
}

// vulnPredicate reads a verified statement's vuln/v1 predicate.
func vulnPredicate(raw []byte) (*VulnPredicate, error) {
	var st statement
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("attestation payload is not an in-toto statement: %v", err)
	}
	if st.PredicateType != VulnPredicateType {
		return nil, fmt.Errorf("predicate type %q is not %s", st.PredicateType, VulnPredicateType)
	}
	var p VulnPredicate
	if err := json.Unmarshal(st.Predicate, &p); err != nil {
		return nil, fmt.Errorf("vuln predicate: %v", err)
	}
	return &p, nil
}

// verifyVuln looks among the image's attestations (.att layers and
// attestation bundles) for a vuln/v1 statement about the digest that the
// attestor signed; the libraries check signature, certificate, log entry,
// timestamp and subject digest.
func (v *verifier) verifyVuln(digest string, s *signatures) (*VulnPredicate, error) {
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	var reasons []string
	for i := range s.attestations {
		raw, err := v.verifyAttestation(ctx, &s.attestations[i], h)
		if err == nil {
			var p *VulnPredicate
			if p, err = vulnPredicate(raw); err == nil {
				return p, nil
			}
		}
		reasons = append(reasons, err.Error())
	}
	for _, b := range s.attBundles {
		if b.predicate != VulnPredicateType {
			continue
		}
		st, err := v.verifyBundleStatement(ctx, b.b, h)
		if err == nil {
			var p *VulnPredicate
			if p, err = vulnPredicate(st); err == nil {
				return p, nil
			}
		}
		reasons = append(reasons, err.Error())
	}
	if len(reasons) == 0 {
		return nil, errors.New("no vulnerability attestation")
	}
	return nil, fmt.Errorf("not signed by attestor %q: %s", v.name, dedupe(reasons))
}

// VulnAttestation is the outcome of looking for a vulnerability attestation
// signed by one of the scan attestors.
type VulnAttestation struct {
	Predicate *VulnPredicate // nil when none was accepted
	Attestor  string         // who signed the accepted one
	Reason    string         // why none was accepted

	// findings is the accepted report parsed, shared by every copy of
	// this outcome: it is cached with the signatures, so a warm admission
	// does not decode the report again.
	findings *vulnFindings
}

// vulnFindings is an accepted attestation's report as facts, parsed once.
type vulnFindings struct {
	once  sync.Once
	scan  facts.Scan // ScannedAt zero when undated
	dated bool       // the attestation or its report says when it was scanned
	note  string     // why the report was set aside, when it was
}

// scan returns the attestation's report as the image's scan, or why it was
// set aside. The Findings slice is shared by every admission of the image
// and must not be modified. A report that says nothing of when it was
// scanned counts as scanned now — each admission's now, not the first's,
// so caching it makes it look neither older nor newer than parsing it
// again would.
func (va *VulnAttestation) scan(now time.Time) (*facts.Scan, string) {
	if va.Predicate == nil {
		return nil, va.Reason
	}
	vf := va.findings
	if vf == nil { // an outcome not made by a Verifier: nothing to share
		vf = &vulnFindings{}
	}
	vf.once.Do(func() { vf.parse(va) })
	if vf.note != "" {
		return nil, vf.note
	}
	s := vf.scan
	if !vf.dated {
		s.ScannedAt = now.UTC()
	}
	return &s, ""
}

func (vf *vulnFindings) parse(va *VulnAttestation) {
	s, dated, err := scan.ParseTrivyFindingsDated(va.Predicate.Scanner.Result)
	if err != nil {
		vf.note = "vulnerability attestation by " + va.Attestor + " ignored: " + err.Error()
		return
	}
	// The attestation's own scan time, when it has one, is the better word.
	if t, err := time.Parse(time.RFC3339, va.Predicate.Metadata.ScanFinishedOn); err == nil {
		s.ScannedAt, dated = t, true
	}
	s.Source = "vuln attestation by " + va.Attestor
	vf.scan, vf.dated = *s, dated
}

func (v *Verifier) vulnAttestation(digest string, s *signatures, scanAttestors []*policyAttestor) VulnAttestation {
	if len(s.attestations) == 0 && len(s.attBundles) == 0 {
		if s.attErr != nil {
			return VulnAttestation{Reason: "attestations unusable: " + s.attErr.Error()}
		}
		return VulnAttestation{Reason: "no attestations found"}
	}
	if len(scanAttestors) == 0 {
		return VulnAttestation{Reason: "no --scan-attestors configured"}
	}
	var reasons []string
	for _, pa := range scanAttestors {
		p, err := pa.ver.verifyVuln(digest, s)
		if err == nil {
			return VulnAttestation{Predicate: p, Attestor: pa.name, findings: &vulnFindings{}}
		}
		reasons = append(reasons, err.Error())
	}
	return VulnAttestation{Reason: "vulnerability attestation ignored: " + dedupe(reasons)}
}

type policyAttestor struct {
	name string
	ver  *verifier
}

func dedupe(ss []string) string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return strings.Join(out, "; ")
}
