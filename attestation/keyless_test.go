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
	"encoding/hex"
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
	issuerExt, _ := asn1.MarshalWithParams(issuer, "utf8") // as Fulcio writes it
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(when.UnixNano()), NotBefore: when.Add(-5 * time.Minute), NotAfter: when.Add(5 * time.Minute),
		EmailAddresses: []string{email}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		// Fulcio writes the issuer twice: raw (v1, what cosign reads for
		// legacy signatures) and DER (v2, what sigstore-go reads).
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(issuer)},
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: issuerExt}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// bundle is a Rekor bundle for a hashedrekord entry of (payload, sig),
// its signed entry timestamp made with rekor.
func bundle(t *testing.T, rekor crypto.Signer, p []byte, sigB64, certPEM string, when time.Time) string {
	sum := sha256.Sum256(p)
	body, _ := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": map[string]any{
		"data": map[string]any{"hash": map[string]any{"algorithm": "sha256", "value": fmt.Sprintf("%x", sum)}},
		"signature": map[string]any{"content": sigB64,
			"publicKey": map[string]any{"content": base64.StdEncoding.EncodeToString([]byte(certPEM))}},
	}})
	payload := map[string]any{"body": base64.StdEncoding.EncodeToString(body), "integratedTime": when.Unix(), "logIndex": 42, "logID": logID(t, rekor)}
	canon, _ := json.Marshal(payload) // map keys marshal sorted: canonical
	h := sha256.Sum256(canon)
	set, err := rekor.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"SignedEntryTimestamp": set, "Payload": payload})
	return string(b)
}

// logID is a Rekor log's ID: the SHA-256 of its public key (RFC 6962).
func logID(t *testing.T, rekor crypto.Signer) string {
	der, err := x509.MarshalPKIXPublicKey(rekor.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
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
			ann["dev.sigstore.cosign/bundle"] = bundle(t, rekorKey, p, sig, certPEM, when)
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
		{"other identity", signKeyless("who", ca, "mallory@evil.test", rekor, seen), attestation.NotVerified, "expected identities"},
		{"other CA", signKeyless("ca", otherCA, "ci@example.com", rekor, seen), attestation.NotVerified, "certificate signed by unknown authority"},
		{"no bundle while required", signKeyless("nobundle", ca, "ci@example.com", nil, time.Now()), attestation.NotVerified, "carries no Rekor entry"},
		{"bundle from another log", signKeyless("otherlog", ca, "ci@example.com", otherRekor, seen), attestation.NotVerified, "rekor log public key not found"},
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

	// An expired certificate signs nothing unless a trusted log or
	// timestamp authority says when it signed: a Rekor bundle that is not
	// verified (no log trusted, or the log ignored) does not count, whatever
	// integratedTime it claims.
	forged := signKeyless("forged", ca, "ci@example.com", otherRekor, seen)
	for _, mode := range []string{"optional", "ignore"} {
		t.Run("expired certificate, unverified bundle, transparencyLog "+mode, func(t *testing.T) {
			a := *att
			a.Spec.TransparencyLog = mode
			kl := *att.Spec.Keyless
			kl.RekorPublicKey = ""
			a.Spec.Keyless = &kl
			o, why := outcome(verify(t, newVerifier(t), forged, &a), "ci")
			if o != attestation.NotVerified || !strings.Contains(why, "expected a signed timestamp to verify an expired certificate") {
				t.Errorf("got %v %q, want not verified: expired certificate without a verified timestamp", o, why)
			}
		})
	}
}

// TestKeylessBundle: keyless signatures in Sigstore bundles, verified by
// sigstore-go. Bundles with log entries and inclusion proofs are exercised
// against the cosign CLI in the end-to-end differential suite.
func TestKeylessBundle(t *testing.T) {
	reg := at.NewRegistry(t)
	ca := newCA(t)
	rekor := at.ECKey(t, elliptic.P256())
	const issuer = "https://token.actions.example.com"

	// sign attaches a bundle whose certificate is valid around when; with
	// promise, its log entry has an inclusion promise but no proof.
	sign := func(repo, email string, when time.Time, promise bool) string {
		_, d := reg.Push(t, repo, "v1")
		key, certPEM := ca.leaf(t, email, issuer, when)
		block, _ := pem.Decode([]byte(certPEM))
		st := at.Statement(d, at.SignPredicateType)
		probe := at.Bundle(t, key, st, nil)
		var env struct {
			DSSEEnvelope struct {
				Signatures []struct{ Sig string } `json:"signatures"`
			} `json:"dsseEnvelope"`
		}
		json.Unmarshal(probe, &env)
		sig := env.DSSEEnvelope.Signatures[0].Sig
		vm := map[string]any{"certificate": map[string]any{"rawBytes": block.Bytes}}
		if promise {
			sum := sha256.Sum256(st)
			body, _ := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "dsse", "spec": map[string]any{
				"payloadHash": map[string]string{"algorithm": "sha256", "value": fmt.Sprintf("%x", sum)},
				"signatures":  []map[string]string{{"signature": sig, "verifier": base64.StdEncoding.EncodeToString([]byte(certPEM))}},
			}})
			id := logID(t, rekor)
			canon, _ := json.Marshal(map[string]any{"body": base64.StdEncoding.EncodeToString(body), "integratedTime": when.Unix(), "logID": id, "logIndex": 7})
			h := sha256.Sum256(canon)
			set, err := rekor.Sign(rand.Reader, h[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := hex.DecodeString(id)
			vm["tlogEntries"] = []map[string]any{{
				"logIndex": "7", "logId": map[string]any{"keyId": raw}, "kindVersion": map[string]string{"kind": "dsse", "version": "0.0.1"},
				"integratedTime": fmt.Sprint(when.Unix()), "inclusionPromise": map[string]any{"signedEntryTimestamp": set},
				"canonicalizedBody": body,
			}}
		}
		reg.AttachBundle(t, repo, d, bundleWithSig(t, st, sig, vm))
		return reg.Host + "/" + repo + "@" + d
	}
	att := func(tlog string) *policy.Attestor {
		return &policy.Attestor{Metadata: policy.ObjectMeta{Name: "ci"}, Spec: policy.AttestorSpec{
			TransparencyLog: tlog, CTLog: "ignore",
			Keyless: &policy.Keyless{Issuer: issuer, Subject: "ci@example.com", FulcioRoots: ca.pem, RekorPublicKey: at.PubPEM(t, rekor)},
		}}
	}
	now, past := time.Now(), time.Now().Add(-time.Hour)
	cases := []struct {
		name, ref string
		att       *policy.Attestor
		want      attestation.Outcome
		reason    string
	}{
		{"valid identity, log ignored", sign("good", "ci@example.com", now, false), att("ignore"), attestation.Verified, ""},
		{"other identity", sign("who", "mallory@evil.test", now, false), att("ignore"), attestation.NotVerified, "no matching CertificateIdentity"},
		{"expired certificate, no log entry or timestamp", sign("expired", "ci@example.com", past, false), att("ignore"), attestation.NotVerified, "leaf certificate verification failed"},
		{"log required, bundle without an entry", sign("noentry", "ci@example.com", now, false), att("required"), attestation.NotVerified, "carries no Rekor entry"},
		// sigstore-go refuses a v0.3 bundle whose entry has no inclusion
		// proof; a bundle it refuses is skipped, as cosign skips it.
		{"log entry without an inclusion proof", sign("promise", "ci@example.com", past, true), att("required"), attestation.NotVerified, "no signatures found"},
	}
	v := newVerifier(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, why := outcome(verify(t, v, c.ref, c.att), "ci")
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
