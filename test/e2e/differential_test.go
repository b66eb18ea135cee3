package e2e

import (
	"crypto"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imagegate/imagegate/test/e2e/harness"
	st "github.com/imagegate/imagegate/test/e2e/sigstoretest"
)

// The differential suite crafts signatures, certificates, Rekor entries,
// timestamps and bundles (test/e2e/sigstoretest), pushes them next to an
// image in the local registry, and asks both `cosign verify` and
// `imagegate verify` about the image with the same trust: the trusted root
// goes to cosign as --trusted-root and to imagegate as the attestor's
// spec.trustedRoot. Each row says what cosign must answer (the suite checks
// that first, so a row that no longer matches cosign fails as such) and
// whether imagegate must agree or is documented to be stricter.

// relation is what imagegate's verdict must be relative to cosign's.
type relation int

const (
	equal    relation = iota // the same verdict
	stricter                 // documented: imagegate refuses what cosign accepts
)

func (r relation) String() string { return [...]string{"equal", "imagegate stricter"}[r] }

// trust is how a case verifies: the cosign flags and the attestor spec are
// both derived from it, so the two sides cannot drift apart.
type trust struct {
	key                   crypto.PublicKey // key-based when set, else keyless
	subject, subjectRE    string
	issuer, issuerRE      string
	ignoreTlog, ignoreSCT bool
	signedTimestamps      bool
	root                  func(f *diffFixture) st.Trust // nil: the full trust of the good PKI
	digestAlg             string                        // cosign --signature-digest-algorithm
}

// diffCase is a row of the suite.
type diffCase struct {
	name, class, crafted string
	craft                func(f *diffFixture, img diffImage) error
	trust                trust
	cosignOK             bool
	rel                  relation
}

// diffImage is the image a case signs.
type diffImage struct {
	repo   name.Repository
	digest string // sha256:<hex>
	ref    string // host/repo@digest
	hex    string
}

// diffFixture holds what every case shares.
type diffFixture struct {
	host      string
	good, bad *st.PKI // trusted, and an instance nobody trusts
	dir       string
	imagegate string
}

const (
	testIssuer  = "https://token.actions.example.com"
	testSubject = "builder@example.com"
)

func (f *diffFixture) fullTrust() st.Trust {
	return st.Trust{Fulcio: []*st.PKI{f.good}, Rekor: []*st.PKI{f.good}, CT: []*st.PKI{f.good}, TSA: []*st.PKI{f.good}}
}

// args are the cosign verify arguments of tr, with its trusted root file and key file.
func (tr trust) args(rootFile, keyFile string) []string {
	a := []string{"verify", "--trusted-root", rootFile, "--offline=true"}
	a = append(a, harness.CosignRegistryFlags...)
	if tr.key != nil {
		a = append(a, "--key", keyFile)
	} else {
		if tr.subjectRE != "" {
			a = append(a, "--certificate-identity-regexp", tr.subjectRE)
		} else {
			a = append(a, "--certificate-identity", tr.subject)
		}
		if tr.issuerRE != "" {
			a = append(a, "--certificate-oidc-issuer-regexp", tr.issuerRE)
		} else {
			a = append(a, "--certificate-oidc-issuer", tr.issuer)
		}
	}
	if tr.ignoreTlog {
		a = append(a, "--insecure-ignore-tlog=true")
	}
	if tr.ignoreSCT {
		a = append(a, "--insecure-ignore-sct=true")
	}
	if tr.signedTimestamps {
		a = append(a, "--use-signed-timestamps=true")
	}
	if tr.digestAlg != "" {
		a = append(a, "--signature-digest-algorithm", tr.digestAlg)
	}
	return a
}

// attestor is the Attestor object of tr named a.
func (tr trust) attestor(rootJSON []byte) map[string]any {
	spec := map[string]any{"trustedRoot": string(rootJSON), "transparencyLog": "required"}
	if tr.ignoreTlog {
		spec["transparencyLog"] = "ignore"
	}
	if tr.signedTimestamps {
		spec["signedTimestamps"] = "required"
	}
	if tr.key != nil {
		spec["publicKeys"] = []string{string(st.PublicKeyPEM(tr.key))}
	} else {
		kl := map[string]string{}
		if tr.subjectRE != "" {
			kl["subjectRegExp"] = tr.subjectRE
		} else {
			kl["subject"] = tr.subject
		}
		if tr.issuerRE != "" {
			kl["issuerRegExp"] = tr.issuerRE
		} else {
			kl["issuer"] = tr.issuer
		}
		spec["keyless"] = kl
		if tr.ignoreSCT {
			spec["ctlog"] = "ignore"
		}
	}
	return map[string]any{"apiVersion": "imagegate.dev/v1alpha1", "kind": "Attestor", "metadata": map[string]string{"name": "a"}, "spec": spec}
}

// TestDifferentialCosign runs every row of diffCases through cosign verify
// and imagegate verify.
func TestDifferentialCosign(t *testing.T) {
	harness.RequireE2E(t)
	start := time.Now()
	f := &diffFixture{host: harness.StartRegistry(t), good: st.MustNew("good"), bad: st.MustNew("evil"),
		dir: t.TempDir(), imagegate: harness.ImagegateBinary(t)}
	cases := diffCases()
	if len(cases) < 40 {
		t.Fatalf("%d cases; the suite needs at least 40", len(cases))
	}
	perClass := map[string]int{}
	var disagree []string
	for i, c := range cases {
		perClass[c.class]++
		t.Run(c.name, func(t *testing.T) {
			got := f.run(t, i, c)
			if got != "" {
				disagree = append(disagree, got)
			}
		})
	}
	t.Logf("%d cases %v in %s", len(cases), perClass, time.Since(start).Round(time.Second))
	if len(disagree) > 0 {
		t.Logf("imagegate disagrees with the row in %d cases:\n  %s", len(disagree), strings.Join(disagree, "\n  "))
	}
}

// run crafts and verifies one case; it returns a line when imagegate's
// verdict breaks the row's relation.
func (f *diffFixture) run(t *testing.T, i int, c diffCase) string {
	repoName := fmt.Sprintf("diff/%02d-%s", i, strings.ReplaceAll(c.name, "/", "-"))
	repoName = strings.ToLower(repoName)
	digest := harness.PushRandomImage(t, f.host, repoName, "v1")
	repo, err := name.NewRepository(f.host+"/"+repoName, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img := diffImage{repo: repo, digest: digest, ref: f.host + "/" + repoName + "@" + digest, hex: strings.TrimPrefix(digest, "sha256:")}
	if err := c.craft(f, img); err != nil {
		t.Fatalf("crafting: %v", err)
	}
	dir := filepath.Join(f.dir, fmt.Sprintf("%02d", i))
	tr := c.trust
	rootSpec := f.fullTrust()
	if tr.root != nil {
		rootSpec = tr.root(f)
	}
	rootJSON, err := rootSpec.JSON()
	if err != nil {
		t.Fatal(err)
	}
	rootFile := writeFile(t, dir, "trusted_root.json", string(rootJSON))
	keyFile := ""
	if tr.key != nil {
		keyFile = writeFile(t, dir, "key.pub", string(st.PublicKeyPEM(tr.key)))
	}
	att, err := json.MarshalIndent(tr.attestor(rootJSON), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	policies := filepath.Join(dir, "policies")
	writeFile(t, policies, "attestor.yaml", string(att))

	args := append(tr.args(rootFile, keyFile), img.ref)
	cosignOut, cosignErr := harness.Cosign(t, dir, args...)
	cosignOK := cosignErr == nil
	igOut, igOK := f.imagegateVerify(t, img.ref, policies)
	report := func() string {
		return fmt.Sprintf("case %s (%s): %s\ncosign %s\n-> verified=%v (row: %v)\n%s\nimagegate verify %s --policies %s --attestor a -o json\n-> verified=%v (row: %s)\n%s\nattestor spec (trustedRoot elided): %s",
			c.name, c.class, c.crafted, strings.Join(args, " "), cosignOK, c.cosignOK, indentOut(cosignOut),
			img.ref, policies, igOK, c.rel, indentOut(igOut), elideRoot(att))
	}
	if cosignOK != c.cosignOK {
		t.Errorf("cosign's verdict is not the row's:\n%s", report())
		return ""
	}
	want := cosignOK
	if c.rel == stricter {
		want = false
	}
	if igOK != want {
		t.Errorf("imagegate verified=%v, want %v (%s to cosign's %v):\n%s", igOK, want, c.rel, cosignOK, report())
		return fmt.Sprintf("%s: cosign verified=%v, imagegate verified=%v (want %v)", c.name, cosignOK, igOK, want)
	}
	t.Logf("cosign verified=%v, imagegate verified=%v (%s)", cosignOK, igOK, c.rel)
	return ""
}

// imagegateVerify runs imagegate verify -o json and returns its output and verdict.
func (f *diffFixture) imagegateVerify(t *testing.T, ref, policies string) (string, bool) {
	cmd := exec.Command(f.imagegate, "verify", ref, "--policies", policies, "--attestor", "a", "-o", "json")
	out, err := cmd.CombinedOutput()
	code := harness.ExitCode(err)
	if code != 0 && code != 1 {
		t.Fatalf("imagegate verify exited %d (bad input?):\n%s", code, out)
	}
	var res struct {
		Verified bool `json:"verified"`
	}
	if i := strings.Index(string(out), "{"); i < 0 || json.Unmarshal(out[i:], &res) != nil {
		if code == 0 {
			t.Fatalf("imagegate verify exited 0 without its JSON verdict:\n%s", out)
		}
	}
	return string(out), code == 0 && res.Verified
}

func indentOut(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 4000 {
		s = s[:4000] + " …"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

func elideRoot(att []byte) string {
	var m map[string]any
	_ = json.Unmarshal(att, &m)
	if spec, ok := m["spec"].(map[string]any); ok {
		spec["trustedRoot"] = "…"
	}
	b, _ := json.Marshal(m["spec"])
	return string(b)
}
