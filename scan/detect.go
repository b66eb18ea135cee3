package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Formats ParseFile understands.
const (
	FormatAuto     = "auto"
	FormatTrivy    = "trivy"
	FormatOperator = "vulnerabilityreport"
	FormatFeed     = "malicious-feed"
)

// Parse reads one report in the given format (FormatAuto tells a Trivy
// report, a VulnerabilityReport and a malicious feed apart).
func Parse(format string, data []byte, now time.Time) ([]*Record, map[string]string, error) {
	if format == FormatAuto {
		format = detect(data)
	}
	switch format {
	case FormatTrivy:
		r, err := ParseTrivy(data, now)
		if err != nil {
			return nil, nil, err
		}
		return []*Record{r}, nil, nil
	case FormatOperator:
		r, err := ParseVulnerabilityReport(data, now)
		if err != nil {
			return nil, nil, err
		}
		return []*Record{r}, nil, nil
	case FormatFeed:
		m, err := ParseMaliciousFeed(data)
		return nil, m, err
	}
	return nil, nil, fmt.Errorf("unknown format %q (expected %s, %s, %s or %s)", format, FormatAuto, FormatTrivy, FormatOperator, FormatFeed)
}

func detect(data []byte) string {
	var probe struct {
		SchemaVersion *int `json:"SchemaVersion"`
		Kind          string
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &probe) == nil {
		switch {
		case probe.SchemaVersion != nil:
			return FormatTrivy
		case probe.Kind == "VulnerabilityReport":
			return FormatOperator
		}
	}
	if bytes.Contains(data, []byte("kind: VulnerabilityReport")) {
		return FormatOperator
	}
	if len(trimmed) > 0 && trimmed[0] == '{' && !bytes.Contains(trimmed, []byte(`"digests"`)) {
		return FormatTrivy // let the Trivy parser say what is wrong with it
	}
	return FormatFeed
}
