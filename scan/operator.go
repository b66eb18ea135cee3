package scan

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/imagegate/imagegate/facts"
	"sigs.k8s.io/yaml"
)

// vulnerabilityReport is trivy-operator's aquasecurity.github.io/v1alpha1
// VulnerabilityReport, as far as imagegate reads it.
type vulnerabilityReport struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Report     struct {
		UpdateTimestamp string `json:"updateTimestamp"`
		Registry        struct {
			Server string `json:"server"`
		} `json:"registry"`
		Artifact struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
			Digest     string `json:"digest"`
		} `json:"artifact"`
		Vulnerabilities []struct {
			VulnerabilityID string `json:"vulnerabilityID"`
			Resource        string `json:"resource"`
			Severity        string `json:"severity"`
			Title           string `json:"title"`
			Class           string `json:"class"`
		} `json:"vulnerabilities"`
	} `json:"report"`
}

// ParseVulnerabilityReport maps a trivy-operator VulnerabilityReport (YAML
// or JSON) onto a Record. The operator does not say whether a package is an
// OS or a language package unless the report carries a class, so findings
// without one have no class (a Vul rule with riskClass will not select them).
func ParseVulnerabilityReport(data []byte, now time.Time) (*Record, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("malformed YAML/JSON: %w", err)
	}
	var vr vulnerabilityReport
	if err := json.Unmarshal(js, &vr); err != nil {
		return nil, fmt.Errorf("not a VulnerabilityReport: %w", err)
	}
	if vr.Kind != "VulnerabilityReport" || !strings.HasPrefix(vr.APIVersion, "aquasecurity.github.io/") {
		return nil, fmt.Errorf("expected kind VulnerabilityReport of aquasecurity.github.io, got %q %q", vr.APIVersion, vr.Kind)
	}
	a := vr.Report.Artifact
	rec := &Record{Digest: a.Digest, Scan: facts.Scan{ScannedAt: scannedAt(vr.Report.UpdateTimestamp, now), Source: "trivy-operator", Findings: []facts.Finding{}}}
	if a.Repository != "" && a.Tag != "" {
		ref := a.Repository
		if vr.Report.Registry.Server != "" {
			ref = vr.Report.Registry.Server + "/" + ref
		}
		rec.Ref = canonicalRef(ref + ":" + a.Tag)
	}
	if _, err := rec.keys(); err != nil {
		return nil, err
	}
	for i, v := range vr.Report.Vulnerabilities {
		lvl, ok := level(v.Severity)
		if !ok {
			return nil, fmt.Errorf("report.vulnerabilities[%d].severity: unknown severity %q", i, v.Severity)
		}
		rec.Scan.Findings = append(rec.Scan.Findings, facts.Finding{Category: facts.Vul, ID: v.VulnerabilityID, Level: lvl,
			Class: trivyClasses[v.Class], Name: firstNonEmpty(v.Title, v.Resource)})
	}
	return rec, nil
}
