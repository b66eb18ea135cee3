package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/test/e2e/harness"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// vulnPredicate is a cosign vuln/v1 predicate whose scanner result is a
// Trivy report with the given vulnerabilities JSON array.
func vulnPredicate(vulns string) string {
	return `{"invocation":{"uri":"e2e"},"scanner":{"uri":"pkg:github/aquasecurity/trivy@0.50.0","version":"0.50.0","result":` +
		`{"SchemaVersion":2,"ArtifactName":"e2e","Results":[{"Target":"e2e","Class":"os-pkgs","Vulnerabilities":` + vulns + `}]}},` +
		`"metadata":{"scanStartedOn":"2026-11-22T10:00:00Z","scanFinishedOn":"2026-11-22T10:01:00Z"}}`
}

// TestWebhookScanAttestations: scan facts from vulnerability attestations
// made with `cosign attest --type vuln`, fetched live by imagegate serve
// --scan-attestors, in both storage formats.
func TestWebhookScanAttestations(t *testing.T) {
	harness.RequireE2E(t)
	host := harness.StartRegistry(t)
	keys := t.TempDir()
	scanner, scannerPub := harness.CosignGenerateKeyPair(t, filepath.Join(keys, "scanner"))
	forger, _ := harness.CosignGenerateKeyPair(t, filepath.Join(keys, "forger"))
	attest := func(key, tag, vulns string, extra ...string) string {
		ref := host + "/team/scanned@" + harness.PushRandomImage(t, host, "team/scanned", tag)
		pred := filepath.Join(t.TempDir(), "vuln.json")
		if err := os.WriteFile(pred, []byte(vulnPredicate(vulns)), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"attest", "--key", key, "--type", "vuln", "--predicate", pred, "--tlog-upload=false", "--yes"}, harness.CosignRegistryFlags...)
		args = append(args, extra...)
		if out, err := harness.Cosign(t, filepath.Dir(key), append(args, ref)...); err != nil {
			t.Fatalf("cosign attest %s: %v\n%s", ref, err, out)
		}
		return ref
	}
	critical := `[{"VulnerabilityID":"CVE-2024-3094","Severity":"CRITICAL"}]`
	vulnerable := attest(scanner, "vulnerable", critical)
	vulnerableBundle := attest(scanner, "vulnerable-bundle", critical, "--new-bundle-format")
	clean := attest(scanner, "clean", `[]`)
	forged := attest(forger, "forged", `[]`)
	unattested := host + "/team/scanned@" + harness.PushRandomImage(t, host, "team/scanned", "none")

	policies := attestorYAML(t, "e2e-scanner", scannerPub) + `---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: e2e-no-high-vulns}
spec:
  strategyId: 9701
  strategyName: e2e-no-high-vulns
  ruleAction: 2
  alarmDetail:
    vul:
      riskLevel: [high]
  scopes:
  - {clusterId: e2e-cluster, allNamespace: 1}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: e2e-unscanned}
spec:
  strategyId: 9702
  strategyName: e2e-unscanned
  ruleAction: 1
  unScanedImage: true
  scopes:
  - {clusterId: e2e-cluster, allNamespace: 1}
`
	g := startGate(t, policies, "", "--scan-attestors", "e2e-scanner")
	ctx := context.Background()
	pods := g.client.CoreV1().Pods(g.ns)

	for _, c := range []struct{ name, ref string }{{"critical vulnerability", vulnerable}, {"critical vulnerability, Sigstore bundle", vulnerableBundle}} {
		t.Run(c.name+" refused", func(t *testing.T) {
			_, err := pods.Create(ctx, pod("vulnerable", c.ref, nil), metav1.CreateOptions{})
			mustDeny(t, "pod with "+c.ref, err, c.ref, `blocked by strategy 9701 "e2e-no-high-vulns"`, "CVE-2024-3094")
		})
	}
	t.Run("clean scan created without warnings", func(t *testing.T) {
		g.warnings.Take()
		if _, err := pods.Create(ctx, pod("clean", clean, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod with %s: %v", clean, err)
		}
		if w := g.warnings.Take(); len(w) > 0 {
			t.Errorf("warnings for a clean, attested image: %q", w)
		}
	})
	for _, c := range []struct{ name, pod, ref, why string }{
		{"attestation by another key", "forged", forged, "unscanned ("},
		{"no attestation", "unattested", unattested, "unscanned"},
	} {
		t.Run(c.name+": unscanned, alerted", func(t *testing.T) {
			g.warnings.Take()
			if _, err := pods.Create(ctx, pod(c.pod, c.ref, nil), metav1.CreateOptions{}); err != nil {
				t.Fatalf("pod with %s: %v", c.ref, err)
			}
			w := g.warnings.Take()
			if !hasWarning(w, `alerted by strategy 9702 "e2e-unscanned"`) || !hasWarning(w, c.why) {
				t.Fatalf("warnings %q: want strategy 9702 and %q", w, c.why)
			}
			t.Logf("warnings: %q", w)
		})
	}
}
