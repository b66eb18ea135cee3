package attestation

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/scan"
)

// VulnPredicateType is cosign's vulnerability attestation predicate.
const VulnPredicateType = "https://cosign.sigstore.dev/attestation/vuln/v1"

// envelope is a DSSE envelope, as cosign stores attestations in the
// sha256-<digest>.att image.
type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// statement is an in-toto statement.
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

// about reports whether one of the statement's subjects is digest.
func (st *statement) about(digest string) bool {
	algo, hexPart, _ := strings.Cut(digest, ":")
	for _, s := range st.Subject {
		if s.Digest[algo] == hexPart {
			return true
		}
	}
	return false
}

// pae is DSSE's pre-authentication encoding, what the signature covers.
func pae(payloadType string, payload []byte) []byte {
	return []byte("DSSEv1 " + strconv.Itoa(len(payloadType)) + " " + payloadType + " " + strconv.Itoa(len(payload)) + " " + string(payload))
}

// verifyVuln checks one attestation envelope against an attestor and, when
// it is a vuln/v1 statement about digest signed by the attestor, returns its
// predicate.
func (v *verifier) verifyVuln(digest string, raw []byte) (*VulnPredicate, error) {
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("attestation is not a DSSE envelope: %v", err)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, errors.New("attestation payload is not base64")
	}
	// The attestor's signature and transparency-log rules are those of
	// image signatures: one check for both. The envelope carries no
	// certificate or Rekor entry, so keyless attestors and
	// transparencyLog: required refuse it.
	signed := pae(env.PayloadType, payload)
	var tlogErr error
	ok := false
	for _, es := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(es.Sig)
		if err != nil {
			continue
		}
		s := signature{payload: payload, signed: signed, sig: sig, dsse: true, payloadType: env.PayloadType}
		if v.signedBy(&s, nil) != nil {
			continue
		}
		if tlogErr = v.checkTlog(&s); tlogErr == nil {
			ok = true
			break
		}
	}
	switch {
	case !ok && tlogErr != nil:
		return nil, tlogErr
	case !ok:
		return nil, fmt.Errorf("not signed by attestor %q", v.name)
	}
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("attestation payload is not an in-toto statement: %v", err)
	}
	if st.PredicateType != VulnPredicateType {
		return nil, fmt.Errorf("predicate type %q is not %s", st.PredicateType, VulnPredicateType)
	}
	if !st.about(digest) {
		return nil, fmt.Errorf("attestation is about another image digest")
	}
	var p VulnPredicate
	if err := json.Unmarshal(st.Predicate, &p); err != nil {
		return nil, fmt.Errorf("vuln predicate: %v", err)
	}
	return &p, nil
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
	if len(s.attestations) == 0 {
		return VulnAttestation{Reason: "no attestations found"}
	}
	var reasons []string
	for _, pa := range scanAttestors {
		for _, raw := range s.attestations {
			p, err := pa.ver.verifyVuln(digest, raw)
			if err == nil {
				return VulnAttestation{Predicate: p, Attestor: pa.name, findings: &vulnFindings{}}
			}
			reasons = append(reasons, err.Error())
		}
	}
	if len(scanAttestors) == 0 {
		return VulnAttestation{Reason: "no --scan-attestors configured"}
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
