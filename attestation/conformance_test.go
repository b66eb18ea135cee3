package attestation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// cosignCLI returns the real cosign binary named by IMAGEGATE_COSIGN, or
// skips: the e2e target builds it (test/e2e/run.sh) and sets the variable.
func cosignCLI(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("IMAGEGATE_COSIGN")
	if bin == "" {
		t.Skip("IMAGEGATE_COSIGN is not set (make e2e builds cosign and sets it)")
	}
	return bin
}

type cosign struct {
	t   *testing.T
	bin string
	dir string
}

func (c cosign) run(args ...string) (string, error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+filepath.Join(c.dir, "tuf"), "SIGSTORE_NO_CACHE=true")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// keyPair makes a cosign key pair and returns the private key path and the
// attestor trusting its public key.
func (c cosign) keyPair(name string) (string, *policy.Attestor) {
	c.t.Helper()
	if out, err := c.run("generate-key-pair", "--output-key-prefix", name); err != nil {
		c.t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(filepath.Join(c.dir, name+".pub"))
	if err != nil {
		c.t.Fatal(err)
	}
	return filepath.Join(c.dir, name+".key"), &policy.Attestor{Metadata: policy.ObjectMeta{Name: name},
		Spec: policy.AttestorSpec{PublicKeys: []string{string(pub)}, TransparencyLog: "ignore"}}
}

// importedKey imports a PEM private key of another algorithm into cosign.
func (c cosign) importedKey(name string, der []byte, pubDER []byte) (string, *policy.Attestor) {
	c.t.Helper()
	p := filepath.Join(c.dir, name+".pem")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	if out, err := c.run("import-key-pair", "--key", p, "--output-key-prefix", name); err != nil {
		c.t.Fatalf("cosign import-key-pair: %v\n%s", err, out)
	}
	return filepath.Join(c.dir, name+".key"), &policy.Attestor{Metadata: policy.ObjectMeta{Name: name},
		Spec: policy.AttestorSpec{PublicKeys: []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))}, TransparencyLog: "ignore"}}
}

func (c cosign) sign(key, ref string, extra ...string) {
	c.t.Helper()
	args := append([]string{"sign", "--key", key, "--tlog-upload=false", "--allow-http-registry", "--yes"}, extra...)
	if out, err := c.run(append(args, ref)...); err != nil {
		c.t.Fatalf("cosign sign %s: %v\n%s", ref, err, out)
	}
}

// verifies reports whether cosign verify exits 0. cosign signs with a P-384
// key over SHA-384 but verifies over SHA-256 unless told otherwise, so for
// such keys it is run as an operator would: --signature-digest-algorithm
// sha384 (imagegate accepts the curve's hash; docs/attestation.md).
func (c cosign) verifies(a *policy.Attestor, ref string) bool {
	pub := filepath.Join(c.dir, a.Metadata.Name+".verify.pub")
	os.WriteFile(pub, []byte(a.Spec.PublicKeys[0]), 0o644)
	// An empty trusted root: cosign insists on one for Sigstore bundles
	// (and would fetch the public-good one over the network otherwise).
	root := filepath.Join(c.dir, "trusted-root.json")
	os.WriteFile(root, []byte(`{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644)
	args := []string{"verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", "--trusted-root", root}
	if strings.HasSuffix(a.Metadata.Name, "-p384") {
		args = append(args, "--signature-digest-algorithm", "sha384")
	}
	_, err := c.run(append(args, ref)...)
	return err == nil
}

// TestConformanceWithCosign: for signed, unsigned, wrong-key, copied, moved-tag
// and multi-attestor images, imagegate's verdict equals cosign verify's exit
// status.
func TestConformanceWithCosign(t *testing.T) {
	c := cosign{t: t, bin: cosignCLI(t), dir: t.TempDir()}
	reg := at.NewRegistry(t)
	k1, a1 := c.keyPair("alice")
	k2, a2 := c.keyPair("bob")
	_, a3 := c.keyPair("carol") // signs nothing
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKCS8PrivateKey(ec384)
	pub384, _ := x509.MarshalPKIXPublicKey(&ec384.PublicKey)
	k384, a384 := c.importedKey("dave-p384", der384, pub384)

	ref := func(repo, tag string) (string, string) {
		r, d := reg.Push(t, repo, tag)
		return r, reg.Host + "/" + repo + "@" + d
	}
	byTagA, byDigestA := ref("app", "a")
	c.sign(k1, byDigestA)
	byTagB, byDigestB := ref("app", "b")
	c.sign(k1, byDigestB)
	c.sign(k2, byDigestB)
	byTagU, byDigestU := ref("app", "unsigned")
	_, byDigestAnn := ref("app", "annotated")
	c.sign(k1, byDigestAnn, "-a", "team=payments", "-a", "build=42")
	byTagMoved, byDigestMoved := ref("app", "moved")
	c.sign(k1, byDigestMoved)
	ref("app", "moved") // the tag now names a new, unsigned image
	_, byDigestOther := ref("other", "a")
	c.sign(k2, byDigestOther)
	_, byDigest384 := ref("app", "p384")
	c.sign(k384, byDigest384)
	// A signature made for image A, copied onto image C's signature tag.
	_, byDigestC := ref("app", "copied")
	sigA := reg.Host + "/app:" + strings.Replace(strings.SplitN(byDigestA, "@", 2)[1], ":", "-", 1) + ".sig"
	sigC := reg.Host + "/app:" + strings.Replace(strings.SplitN(byDigestC, "@", 2)[1], ":", "-", 1) + ".sig"
	reg.Copy(t, sigA, sigC)
	// Sigstore bundles (cosign sign --new-bundle-format), stored as OCI
	// referrers under the tag fallback, and through the referrers API.
	_, byDigestBundle := ref("app", "bundle")
	c.sign(k1, byDigestBundle, "--new-bundle-format")
	_, byDigestBoth := ref("app", "both-formats")
	c.sign(k2, byDigestBoth)
	c.sign(k1, byDigestBoth, "--new-bundle-format")
	api := at.NewRegistry(t, at.WithReferrers())
	apiTag, apiDigest := api.Push(t, "app", "bundle")
	byDigestAPI := api.Host + "/app@" + apiDigest
	c.sign(k2, byDigestAPI, "--new-bundle-format")

	cases := []struct {
		ref string
		a   *policy.Attestor
	}{
		{byDigestA, a1}, {byTagA, a1}, {byDigestA, a2}, {byDigestA, a3},
		{byDigestB, a1}, {byDigestB, a2}, {byTagB, a2}, {byDigestB, a3},
		{byDigestU, a1}, {byTagU, a2},
		{byDigestAnn, a1}, {byDigestAnn, a2},
		{byDigestMoved, a1}, {byTagMoved, a1},
		{byDigestOther, a2}, {byDigestOther, a1},
		{byDigest384, a384}, {byDigest384, a1},
		{byDigestC, a1}, {byDigestC, a2},
		{reg.Host + "/app:missing", a1},
		{byDigestBundle, a1}, {byDigestBundle, a2},
		{byDigestBoth, a1}, {byDigestBoth, a2}, {byDigestBoth, a3},
		{byDigestAPI, a2}, {apiTag, a2}, {byDigestAPI, a1},
	}
	v, err := attestation.New()
	if err != nil {
		t.Fatal(err)
	}
	agree := 0
	for i, cs := range cases {
		t.Run(fmt.Sprintf("%02d_%s_%s", i, cs.a.Metadata.Name, cs.ref[strings.LastIndexAny(cs.ref, "/@:")+1:][:min(12, len(cs.ref)-strings.LastIndexAny(cs.ref, "/@:")-1)]), func(t *testing.T) {
			want := c.verifies(cs.a, cs.ref)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r := v.Verify(ctx, workload.ParseImage(cs.ref), []*policy.Attestor{cs.a})
			got := r.Attestors[0].Outcome == attestation.Verified
			if got != want {
				t.Errorf("%s by %s: imagegate verified=%v (%s), cosign verify exit 0=%v", cs.ref, cs.a.Metadata.Name, got, r.Attestors[0].Reason, want)
			} else {
				agree++
			}
		})
	}
	t.Logf("%d/%d verdicts equal cosign verify's", agree, len(cases))
}

// BenchmarkCosignCLIPerAttestor is what a naive webhook does: one
// `cosign verify` per attestor. Compare with BenchmarkVerifyCold.
func BenchmarkCosignCLIPerAttestor(b *testing.B) {
	bin := os.Getenv("IMAGEGATE_COSIGN")
	if bin == "" {
		b.Skip("IMAGEGATE_COSIGN is not set")
	}
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("attestors=%d", n), func(b *testing.B) {
			t := &testing.T{}
			c := cosign{t: t, bin: bin, dir: b.TempDir()}
			reg := at.NewRegistry(b)
			_, d := reg.Push(b, "app", "v1")
			ref := reg.Host + "/app@" + d
			var atts []*policy.Attestor
			for i := 0; i < n; i++ {
				k, a := c.keyPair(fmt.Sprintf("k%d", i))
				c.sign(k, ref)
				atts = append(atts, a)
			}
			reg.Reset()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, a := range atts {
					if !c.verifies(a, ref) {
						b.Fatal("cosign verify failed")
					}
				}
			}
			b.ReportMetric(float64(reg.Count("/v2/"))/float64(b.N), "registry-requests/op")
		})
	}
}

// BenchmarkCosignCLIRoundTrips: `cosign verify` of a legacy signature by
// digest against the registry answering every request after 50 ms, as
// BenchmarkVerifyColdRoundTrips does for imagegate: round-trips/op is the
// wall time over the delay, process start included.
func BenchmarkCosignCLIRoundTrips(b *testing.B) {
	bin := os.Getenv("IMAGEGATE_COSIGN")
	if bin == "" {
		b.Skip("IMAGEGATE_COSIGN is not set")
	}
	const delay = 50 * time.Millisecond
	c := cosign{t: &testing.T{}, bin: bin, dir: b.TempDir()}
	reg := at.NewRegistry(b)
	_, d := reg.Push(b, "app", "v1")
	ref := reg.Host + "/app@" + d
	k, a := c.keyPair("k")
	c.sign(k, ref)
	reg.SetFault(func(http.ResponseWriter, *http.Request) bool { time.Sleep(delay); return false })
	reg.Reset()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if !c.verifies(a, ref) {
			b.Fatal("cosign verify failed")
		}
	}
	b.ReportMetric(float64(time.Since(start))/float64(b.N)/float64(delay), "round-trips/op")
	b.ReportMetric(float64(reg.Count("/v2/"))/float64(b.N), "registry-requests/op")
}

// TestCosignVulnAttestation: an attestation made by `cosign attest --type
// vuln` counts as a scan when its signer is a scan attestor, and is ignored
// (with the reason) otherwise.
func TestCosignVulnAttestation(t *testing.T) {
	for _, format := range []string{"legacy .att image", "Sigstore bundle"} {
		t.Run(format, func(t *testing.T) {
			var extra []string
			if format == "Sigstore bundle" {
				extra = []string{"--new-bundle-format"}
			}
			testCosignVulnAttestation(t, extra...)
		})
	}
}

func testCosignVulnAttestation(t *testing.T, extra ...string) {
	c := cosign{t: t, bin: cosignCLI(t), dir: t.TempDir()}
	reg := at.NewRegistry(t)
	k1, a1 := c.keyPair("scanner")
	_, a2 := c.keyPair("someone-else")
	_, d := reg.Push(t, "app", "v1")
	ref := reg.Host + "/app@" + d
	pred := filepath.Join(c.dir, "vuln.json")
	os.WriteFile(pred, []byte(`{"invocation":{"uri":"ci"},"scanner":{"uri":"pkg:github/aquasecurity/trivy@0.50.0","version":"0.50.0","result":`+trivyResult+`},"metadata":{"scanStartedOn":"2026-11-22T10:00:00Z","scanFinishedOn":"2026-11-22T10:01:00Z"}}`), 0o644)
	args := append([]string{"attest", "--key", k1, "--type", "vuln", "--predicate", pred, "--tlog-upload=false", "--allow-http-registry", "--yes"}, extra...)
	if out, err := c.run(append(args, ref)...); err != nil {
		t.Fatalf("cosign attest: %v\n%s", err, out)
	}
	v, _ := attestation.New(attestation.WithAttestations(true))
	src := attestation.NewSource(v, nil)
	for _, cs := range []struct {
		att     *policy.Attestor
		scanned bool
	}{{a1, true}, {a2, false}} {
		fs, err := src.Facts(context.Background(), facts.Request{Images: []workload.Image{workload.ParseImage(ref)}, ScanAttestors: []*policy.Attestor{cs.att}})
		if err != nil {
			t.Fatal(err)
		}
		if got := fs[0].Scan != nil && len(fs[0].Scan.Findings) == 1; got != cs.scanned {
			t.Errorf("scan attestor %s: scanned=%v (note %q), want %v", cs.att.Metadata.Name, got, fs[0].ScanNote, cs.scanned)
		}
	}
}
