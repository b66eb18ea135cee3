package facts

import (
	"context"
	"strings"
	"time"

	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// Finding categories, as AlarmDetail names them.
const (
	Baseline      = "Baseline"
	Vul           = "Vul"
	MaliciousFile = "MaliciousFile"
	SensitiveFile = "SensitiveFile"
	BuildRisk     = "BuildRisk"
)

// Categories lists every finding category.
var Categories = []string{Baseline, Vul, MaliciousFile, SensitiveFile, BuildRisk}

// Finding is one scan finding.
type Finding struct {
	Category string `json:"category"`
	ID       string `json:"id"`
	Level    string `json:"level"`           // high, medium or low
	Class    string `json:"class,omitempty"` // Vul only: cve or app
	Name     string `json:"name,omitempty"`
}

// Scan is an image's scan result.
type Scan struct {
	ScannedAt time.Time `json:"scannedAt,omitzero"`
	Malicious bool      `json:"malicious,omitempty"`
	Findings  []Finding `json:"findings,omitempty"`
	Source    string    `json:"source,omitempty"`
}

// Image is everything known about one image.
type Image struct {
	Digest    string   `json:"digest,omitempty"`
	Attestors []string `json:"attestors,omitempty"` // attestors whose signatures verified
	// AttestorErrors says why an attestor did not verify.
	AttestorErrors map[string]string `json:"attestorErrors,omitempty"`
	// Unverifiable lists attestors that could not be checked at all (registry
	// unreachable, timeout), as opposed to checked and failed.
	Unverifiable []string `json:"unverifiable,omitempty"`
	Scan         *Scan    `json:"scan,omitempty"`
	// Malicious is set by a feed of known-malicious digests, independent of
	// any scan (the image may still be unscanned).
	Malicious       bool   `json:"malicious,omitempty"`
	MaliciousReason string `json:"maliciousReason,omitempty"`
	// ScanNote says why scan evidence was set aside (an attestation signed by
	// the wrong attestor); unscanned images' messages carry it.
	ScanNote string `json:"scanNote,omitempty"`
}

// Source gathers facts for the images of one request. Implementations must
// honour ctx's deadline and return one entry per image, in order.
type Source interface {
	Facts(ctx context.Context, req Request) ([]*Image, error)
}

// Request is what a Source is asked about.
type Request struct {
	Namespace string
	Images    []workload.Image
	// Attestors the applicable policies require; sources verify only these.
	Attestors []*policy.Attestor
	// ImageAttestors, when set, narrows Attestors per image (one entry per
	// image): a policy whose images globs do not name an image needs no
	// signature of it, so its registry is not asked.
	ImageAttestors [][]*policy.Attestor
	// ScanAttestors may vouch for vulnerability attestations (--scan-attestors).
	ScanAttestors []*policy.Attestor
	// ServiceAccount and PullSecrets are the pod's, for registry credentials
	// (in Namespace) when a cluster is available.
	ServiceAccount string
	PullSecrets    []string
}

// NormalizeLevel maps scanner severities onto high, medium and low.
func NormalizeLevel(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical", "high":
		return "high"
	case "medium", "moderate":
		return "medium"
	case "low", "unknown", "negligible", "info", "informational", "":
		return "low"
	}
	return strings.ToLower(s)
}

// NormalizeCategory spells a category the way AlarmDetail does, whatever its case.
func NormalizeCategory(s string) string {
	for _, c := range Categories {
		if strings.EqualFold(c, s) {
			return c
		}
	}
	return s
}
