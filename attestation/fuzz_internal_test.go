package attestation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// fuzzDigest is the image every fuzzed signature is checked for.
const fuzzDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// fuzzKey is fixed, so that corpus entries signed with it stay valid signatures
// across runs and machines.
func fuzzKey(f testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), []byte("imagegate fuzzing key, 32 bytes!"))
	if err != nil {
		f.Fatal(err)
	}
	return k
}

// fuzzVerifiers are the attestors fuzzed material is checked against: the
// fixed key (transparency log ignored, then optional) and a keyless identity
// under a CA of this run, with a Rekor key, so that certificate, chain and
// Rekor bundle annotations are parsed and checked too.
func fuzzVerifiers(f testing.TB, key *ecdsa.PrivateKey) []*verifier {
	caKey := at.ECKey(f, elliptic.P256())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		f.Fatal(err)
	}
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyed := at.KeyAttestor(f, "key", key)
	optional := at.KeyAttestor(f, "key-optional-log", key)
	optional.Spec.TransparencyLog = "optional"
	keyless := &policy.Attestor{Metadata: policy.ObjectMeta{Name: "keyless"}, Spec: policy.AttestorSpec{
		TransparencyLog: "required", CTLog: "ignore",
		Keyless: &policy.Keyless{Issuer: "https://issuer.example", Subject: "ci@example.com", FulcioRoots: ca, RekorPublicKey: at.PubPEM(f, at.ECKey(f, elliptic.P256()))},
	}}
	var out []*verifier
	for _, a := range []*policy.Attestor{keyed, optional, keyless} {
		// No network while fuzzing: the public Sigstore root is never used.
		v, err := newVerifier(a, func() (root.TrustedMaterial, error) { return nil, errors.New("no public root while fuzzing") })
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// FuzzLegacySignature: any .sig layer (payload and cosign's annotations) is
// read and checked without a panic, and verifies only if its payload is a
// simple signing document for the digest.
func FuzzLegacySignature(f *testing.F) {
	key := fuzzKey(f)
	p := at.Payload("registry.example.com/app", fuzzDigest)
	f.Add(p, at.SignWith(f, key, p), "", "", "")
	f.Add(p, at.SignWith(f, key, p), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", `{"SignedEntryTimestamp":"","Payload":{"body":"e30=","integratedTime":1,"logIndex":1,"logID":"00"}}`, `{"SignedRFC3161Timestamp":"AA=="}`)
	f.Add([]byte("not json"), "", "", "{", "{")
	vs := fuzzVerifiers(f, key)
	f.Fuzz(func(t *testing.T, payload []byte, sig, cert, rekorBundle, timestamp string) {
		ann := map[string]string{annotationSignature: sig}
		for k, v := range map[string]string{annotationCertificate: cert, annotationBundle: rekorBundle, annotationTimestamp: timestamp} {
			if v != "" {
				ann[k] = v
			}
		}
		s := &signatures{legacy: []legacySig{newLegacySig(ann, payload)}, legacyOwners: make([]owner, 1)}
		if s.legacy[0].size() <= 0 {
			t.Fatal("a signature of no size")
		}
		for _, v := range vs {
			if err := v.verify(fuzzDigest, s, 0); err == nil && !namesDigest(payload) {
				t.Fatalf("%s verified a payload that does not name the digest: %q", v.name, payload)
			}
		}
	})
}

// FuzzBundle: any referrer body is parsed as a Sigstore bundle or skipped,
// and a parsed one verifies only if its statement is about the digest.
func FuzzBundle(f *testing.F) {
	key := fuzzKey(f)
	f.Add(at.Bundle(f, key, at.Statement(fuzzDigest, at.SignPredicateType), nil))
	f.Add(at.Bundle(f, key, at.Statement("sha256:"+strings.Repeat("2", 64), at.SignPredicateType), nil))
	f.Add([]byte(`{"mediaType":"` + at.BundleMediaType + `","messageSignature":{}}`))
	f.Add([]byte(`{"mediaType":"` + at.BundleMediaType + `","dsseEnvelope":{}}`))
	vs := fuzzVerifiers(f, key)
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := parseBundle(raw)
		if err != nil {
			return
		}
		s := &signatures{bundles: []sigBundle{b}, bundleOwners: make([]owner, 1)}
		for _, v := range vs {
			if err := v.verify(fuzzDigest, s, 0); err == nil && !namesDigest(b.b.GetDsseEnvelope().GetPayload()) {
				t.Fatalf("%s verified a bundle whose statement is not about the digest", v.name)
			}
		}
	})
}

// namesDigest: a payload (simple signing or in-toto statement) that
// mentions the fuzzed digest.
func namesDigest(payload []byte) bool {
	var doc map[string]any
	if json.Unmarshal(payload, &doc) != nil {
		return false
	}
	_, hexPart, _ := strings.Cut(fuzzDigest, ":")
	return strings.Contains(string(payload), hexPart)
}

// The fuzz targets start from material that verifies, so that mutations
// reach the libraries' checks rather than stopping at a parse error.
func TestFuzzCorpusVerifies(t *testing.T) {
	key := fuzzKey(t)
	vs := fuzzVerifiers(t, key)
	p := at.Payload("registry.example.com/app", fuzzDigest)
	legacy := &signatures{legacy: []legacySig{newLegacySig(map[string]string{annotationSignature: at.SignWith(t, key, p)}, p)}, legacyOwners: make([]owner, 1)}
	b, err := parseBundle(at.Bundle(t, key, at.Statement(fuzzDigest, at.SignPredicateType), nil))
	if err != nil {
		t.Fatal(err)
	}
	bundled := &signatures{bundles: []sigBundle{b}, bundleOwners: make([]owner, 1)}
	for _, s := range []*signatures{legacy, bundled} {
		if err := vs[0].verify(fuzzDigest, s, 0); err != nil {
			t.Errorf("corpus entry does not verify: %v", err)
		}
	}
}
