package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/imagegate/imagegate/facts"
)

// trivyReport is the part of `trivy image -f json` (schema version 2) that
// imagegate reads.
type trivyReport struct {
	SchemaVersion int    `json:"SchemaVersion"`
	CreatedAt     string `json:"CreatedAt"`
	ArtifactName  string `json:"ArtifactName"`
	ArtifactType  string `json:"ArtifactType"`
	Metadata      struct {
		RepoDigests []string `json:"RepoDigests"`
		RepoTags    []string `json:"RepoTags"`
	} `json:"Metadata"`
	Results []struct {
		Target          string `json:"Target"`
		Class           string `json:"Class"`
		Type            string `json:"Type"`
		Vulnerabilities []struct {
			VulnerabilityID string `json:"VulnerabilityID"`
			PkgName         string `json:"PkgName"`
			Severity        string `json:"Severity"`
			Title           string `json:"Title"`
		} `json:"Vulnerabilities"`
		Secrets []struct {
			RuleID   string `json:"RuleID"`
			Category string `json:"Category"`
			Severity string `json:"Severity"`
			Title    string `json:"Title"`
		} `json:"Secrets"`
		Misconfigurations []struct {
			ID       string `json:"ID"`
			AVDID    string `json:"AVDID"`
			Title    string `json:"Title"`
			Severity string `json:"Severity"`
			Status   string `json:"Status"`
		} `json:"Misconfigurations"`
	} `json:"Results"`
}

// Trivy result classes and what they become.
var trivyClasses = map[string]string{"os-pkgs": "cve", "lang-pkgs": "app"}

// ParseTrivy maps a Trivy JSON report (docs/scans.md): vulnerabilities become
// Vul findings (class os-pkgs → cve, lang-pkgs → app), secrets SensitiveFile
// findings (cloud access keys also Baseline ak_leak), failed image-config
// misconfigurations BuildRisk findings. Severities CRITICAL/HIGH → high,
// MEDIUM → medium, LOW/UNKNOWN → low; any other severity is an error.
func ParseTrivy(data []byte, now time.Time) (*Record, error) {
	r, err := decodeTrivy(data)
	if err != nil {
		return nil, err
	}
	rec := &Record{}
	for _, rd := range r.Metadata.RepoDigests {
		if _, d, ok := strings.Cut(rd, "@"); ok {
			rec.Digest = d
			break
		}
	}
	if name, d, ok := strings.Cut(r.ArtifactName, "@"); ok {
		if rec.Digest == "" {
			rec.Digest = d
		}
		if strings.Contains(name[strings.LastIndexByte(name, '/')+1:], ":") {
			rec.Ref = canonicalRef(name)
		}
	} else if r.ArtifactName != "" {
		rec.Ref = canonicalRef(r.ArtifactName)
	}
	if _, err := rec.keys(); err != nil {
		return nil, err
	}
	scan, err := trivyFindings(r, scannedAt(r.CreatedAt, now))
	if err != nil {
		return nil, err
	}
	rec.Scan = *scan
	return rec, nil
}

// ParseTrivyFindings maps a Trivy report that need not name its image (as
// in a cosign vulnerability attestation, which is about a digest already).
// A report without CreatedAt counts as scanned now.
func ParseTrivyFindings(data []byte, now time.Time) (*facts.Scan, error) {
	s, dated, err := ParseTrivyFindingsDated(data)
	if err != nil {
		return nil, err
	}
	if !dated {
		s.ScannedAt = now.UTC()
	}
	return s, nil
}

// ParseTrivyFindingsDated is ParseTrivyFindings for a result kept past this
// moment (a cache): ScannedAt is the report's own time, and dated says
// whether it had one. When not, ScannedAt is zero and each use of the result
// must put its own now there, as ParseTrivyFindings does: a remembered now
// would make the scan age while nothing about it changed.
func ParseTrivyFindingsDated(data []byte) (scan *facts.Scan, dated bool, err error) {
	r, err := decodeTrivy(data)
	if err != nil {
		return nil, false, err
	}
	at, dated := reportTime(r.CreatedAt)
	s, err := trivyFindings(r, at) // zero when undated
	if err != nil {
		return nil, false, err
	}
	return s, dated, nil
}

func decodeTrivy(data []byte) (*trivyReport, error) {
	var r trivyReport
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&r); err != nil {
		return nil, fmt.Errorf("not a Trivy JSON report: %w", err)
	}
	if r.SchemaVersion != 2 {
		return nil, fmt.Errorf("Trivy report schema version %d: only version 2 (trivy image -f json) is supported", r.SchemaVersion)
	}
	return &r, nil
}

// trivyFindings maps the report's findings; at becomes ScannedAt.
func trivyFindings(r *trivyReport, at time.Time) (*facts.Scan, error) {
	rec := &Record{Scan: facts.Scan{ScannedAt: at, Source: "trivy", Findings: []facts.Finding{}}}
	var errs []error
	add := func(path string, f facts.Finding, severity string) {
		lvl, ok := level(severity)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown severity %q (expected CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN)", path, severity))
			return
		}
		f.Level = lvl
		rec.Scan.Findings = append(rec.Scan.Findings, f)
	}
	for i, res := range r.Results {
		for j, v := range res.Vulnerabilities {
			add(fmt.Sprintf("Results[%d].Vulnerabilities[%d].Severity", i, j),
				facts.Finding{Category: facts.Vul, ID: v.VulnerabilityID, Class: trivyClasses[res.Class], Name: firstNonEmpty(v.Title, v.PkgName)}, v.Severity)
		}
		for j, s := range res.Secrets {
			path := fmt.Sprintf("Results[%d].Secrets[%d].Severity", i, j)
			add(path, facts.Finding{Category: facts.SensitiveFile, ID: s.RuleID, Name: firstNonEmpty(s.Title, res.Target)}, s.Severity)
			if isCloudAccessKey(s.RuleID, s.Category) {
				add(path, facts.Finding{Category: facts.Baseline, ID: "ak_leak", Name: "Access Key plaintext storage: " + res.Target}, s.Severity)
			}
		}
		for j, m := range res.Misconfigurations {
			if strings.EqualFold(m.Status, "PASS") {
				continue
			}
			add(fmt.Sprintf("Results[%d].Misconfigurations[%d].Severity", i, j),
				facts.Finding{Category: facts.BuildRisk, ID: firstNonEmpty(m.ID, m.AVDID), Name: m.Title}, m.Severity)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &rec.Scan, nil
}

func level(severity string) (string, bool) {
	switch strings.ToUpper(strings.TrimSpace(severity)) {
	case "CRITICAL", "HIGH":
		return "high", true
	case "MEDIUM":
		return "medium", true
	case "LOW", "UNKNOWN", "":
		return "low", true
	}
	return "", false
}

// isCloudAccessKey recognises Trivy's built-in secret rules for cloud
// provider access keys.
func isCloudAccessKey(ruleID, category string) bool {
	id := strings.ToLower(ruleID)
	switch strings.ToLower(category) {
	case "aws", "gcp", "azure", "alibaba", "alibabacloud", "tencent", "huaweicloud":
		return strings.Contains(id, "access-key") || strings.Contains(id, "secret-key") || strings.Contains(id, "service-account")
	}
	return strings.Contains(id, "access-key")
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
