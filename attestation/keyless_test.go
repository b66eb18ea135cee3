package attestation_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
)

type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pem  string
}

func newCA(t *testing.T) *testCA {
	key := at.ECKey(t, elliptic.P256())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test fulcio"},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{key: key, cert: cert, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// leaf issues a short-lived Fulcio-style code-signing certificate for an
// email identity and OIDC issuer, valid around at.
func (ca *testCA) leaf(t *testing.T, email, issuer string, when time.Time) (*ecdsa.PrivateKey, string) {
	key := at.ECKey(t, elliptic.P256())
	issuerExt, _ := asn1.Marshal(issuer)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(when.UnixNano()), NotBefore: when.Add(-5 * time.Minute), NotAfter: when.Add(5 * time.Minute),
		EmailAddresses: []string{email}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: issuerExt}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// bundle is a Rekor bundle for a hashedrekord entry of (payload, sig),
// its signed entry timestamp made with rekor.
func bundle(t *testing.T, rekor crypto.Signer, p []byte, sigB64 string, when time.Time) string {
	sum := sha256.Sum256(p)
	body, _ := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": map[string]any{
		"data":      map[string]any{"hash": map[string]any{"algorithm": "sha256", "value": fmt.Sprintf("%x", sum)}},
		"signature": map[string]any{"content": sigB64},
	}})
	payload := map[string]any{"body": base64.StdEncoding.EncodeToString(body), "integratedTime": when.Unix(), "logIndex": 42, "logID": "c0ffee"}
	canon, _ := json.Marshal(payload) // map keys marshal sorted: canonical
	h := sha256.Sum256(canon)
	set, err := rekor.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"SignedEntryTimestamp": set, "Payload": payload})
	return string(b)
}

func TestKeyless(t *testing.T) {
	reg := at.NewRegistry(t)
	ca, otherCA := newCA(t), newCA(t)
	rekor, otherRekor := at.ECKey(t, elliptic.P256()), at.ECKey(t, elliptic.P256())
	seen := time.Now().Add(-time.Hour) // the certificate expired long ago; the log saw it in time
	const issuer = "https://token.actions.example.com"

	signKeyless := func(repo string, ca *testCA, email string, rekorKey crypto.Signer, when time.Time) string {
		_, d := reg.Push(t, repo, "v1")
		key, certPEM := ca.leaf(t, email, issuer, when)
		p := at.Payload(reg.Host+"/"+repo, d)
		sig := at.SignWith(t, key, p)
		ann := map[string]string{"dev.cosignproject.cosign/signature": sig, "dev.sigstore.cosign/certificate": certPEM}
		if rekorKey != nil {
			ann["dev.sigstore.cosign/bundle"] = bundle(t, rekorKey, p, sig, when)
		}
		reg.Attach(t, repo, d, at.Layer{Payload: p, Annotations: ann})
		return reg.Host + "/" + repo + "@" + d
	}
	att := &policy.Attestor{Metadata: policy.ObjectMeta{Name: "ci"}, Spec: policy.AttestorSpec{
		TransparencyLog: "required",
		Keyless:         &policy.Keyless{Issuer: issuer, SubjectRegExp: `^.*@example\.com$`, FulcioRoots: ca.pem, RekorPublicKey: at.PubPEM(t, rekor)}, CTLog: "ignore",
	}}
	cases := []struct {
		name, ref string
		want      attestation.Outcome
		reason    string
	}{
		{"valid identity and bundle", signKeyless("good", ca, "ci@example.com", rekor, seen), attestation.Verified, ""},
		{"other identity", signKeyless("who", ca, "mallory@evil.test", rekor, seen), attestation.NotVerified, "identity"},
		{"other CA", signKeyless("ca", otherCA, "ci@example.com", rekor, seen), attestation.NotVerified, "Fulcio roots"},
		{"no bundle while required", signKeyless("nobundle", ca, "ci@example.com", nil, time.Now()), attestation.NotVerified, "no Rekor bundle"},
		{"expired certificate without a bundle", signKeyless("expired", ca, "ci@example.com", nil, seen), attestation.NotVerified, "expired"},
		{"bundle from another log", signKeyless("otherlog", ca, "ci@example.com", otherRekor, seen), attestation.NotVerified, "signed entry timestamp"},
	}
	v := newVerifier(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, why := outcome(verify(t, v, c.ref, att), "ci")
			if o != c.want || !strings.Contains(why, c.reason) {
				t.Errorf("got %v %q, want %v %q", o, why, c.want, c.reason)
			}
		})
	}
}

// TestKeylessBundle: keyless signatures in Sigstore bundles (certificate and
// Rekor "dsse" entry in the bundle's verification material).
func TestKeylessBundle(t *testing.T) {
	reg := at.NewRegistry(t)
	ca := newCA(t)
	rekor, otherRekor := at.ECKey(t, elliptic.P256()), at.ECKey(t, elliptic.P256())
	seen := time.Now().Add(-time.Hour)
	const issuer = "https://token.actions.example.com"

	sign := func(repo, email string, rekorKey crypto.Signer, tamperEntry bool) string {
		_, d := reg.Push(t, repo, "v1")
		key, certPEM := ca.leaf(t, email, issuer, seen)
		block, _ := pem.Decode([]byte(certPEM))
		st := at.Statement(d, at.SignPredicateType)
		// The bundle is made twice: first to learn the signature, then with
		// the log entry recording it.
		probe := at.Bundle(t, key, st, nil)
		var env struct {
			DSSEEnvelope struct {
				Signatures []struct{ Sig string } `json:"signatures"`
			} `json:"dsseEnvelope"`
		}
		json.Unmarshal(probe, &env)
		sig := env.DSSEEnvelope.Signatures[0].Sig
		payloadSum := sha256.Sum256(st)
		if tamperEntry {
			payloadSum = sha256.Sum256([]byte("another payload"))
		}
		body, _ := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "dsse", "spec": map[string]any{
			"payloadHash": map[string]string{"algorithm": "sha256", "value": fmt.Sprintf("%x", payloadSum)},
			"signatures":  []map[string]string{{"signature": sig, "verifier": base64.StdEncoding.EncodeToString([]byte(certPEM))}},
		}})
		keyID := []byte{0xc0, 0xff, 0xee}
		canon, _ := json.Marshal(map[string]any{"body": base64.StdEncoding.EncodeToString(body), "integratedTime": seen.Unix(), "logID": "c0ffee", "logIndex": 7})
		h := sha256.Sum256(canon)
		set, err := rekorKey.Sign(rand.Reader, h[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		vm := map[string]any{
			"certificate": map[string]any{"rawBytes": block.Bytes},
			"tlogEntries": []map[string]any{{
				"logIndex": "7", "logId": map[string]any{"keyId": keyID}, "kindVersion": map[string]string{"kind": "dsse", "version": "0.0.1"},
				"integratedTime": fmt.Sprint(seen.Unix()), "inclusionPromise": map[string]any{"signedEntryTimestamp": set},
				"canonicalizedBody": body,
			}},
		}
		b := bundleWithSig(t, st, sig, vm)
		reg.AttachBundle(t, repo, d, b)
		return reg.Host + "/" + repo + "@" + d
	}
	att := &policy.Attestor{Metadata: policy.ObjectMeta{Name: "ci"}, Spec: policy.AttestorSpec{
		TransparencyLog: "required",
		Keyless:         &policy.Keyless{Issuer: issuer, Subject: "ci@example.com", FulcioRoots: ca.pem, RekorPublicKey: at.PubPEM(t, rekor)}, CTLog: "ignore",
	}}
	cases := []struct {
		name, ref string
		want      attestation.Outcome
		reason    string
	}{
		{"valid identity and log entry", sign("good", "ci@example.com", rekor, false), attestation.Verified, ""},
		{"other identity", sign("who", "mallory@evil.test", rekor, false), attestation.NotVerified, "identity"},
		{"entry from another log", sign("otherlog", "ci@example.com", otherRekor, false), attestation.NotVerified, "signed entry timestamp"},
		{"entry for another payload", sign("tampered", "ci@example.com", rekor, true), attestation.NotVerified, "records another signature"},
	}
	v := newVerifier(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, why := outcome(verify(t, v, c.ref, att), "ci")
			if o != c.want || !strings.Contains(why, c.reason) {
				t.Errorf("got %v %q, want %v %q", o, why, c.want, c.reason)
			}
		})
	}
}

func bundleWithSig(t *testing.T, statement []byte, sig string, vm map[string]any) []byte {
	b, err := json.Marshal(map[string]any{
		"mediaType": at.BundleMediaType, "verificationMaterial": vm,
		"dsseEnvelope": map[string]any{"payload": base64.StdEncoding.EncodeToString(statement), "payloadType": "application/vnd.in-toto+json",
			"signatures": []map[string]string{{"sig": sig}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
