// Package scan holds what scanners found in images: whether an image was
// scanned and when, whether it is known to be malicious, and its findings per
// AlarmDetail category. Importers read real scanner output (Trivy JSON
// reports, trivy-operator VulnerabilityReports, feeds of malicious digests)
// into Records; a Store keeps them in an embedded file database and serves
// lookups from a compact in-memory index.
package scan
