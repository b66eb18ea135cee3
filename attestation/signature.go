package attestation

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/imagegate/imagegate/policy"
)

// Annotations cosign puts on a signature layer.
const (
	annotationSignature   = "dev.cosignproject.cosign/signature"
	annotationCertificate = "dev.sigstore.cosign/certificate"
	annotationChain       = "dev.sigstore.cosign/chain"
	annotationBundle      = "dev.sigstore.cosign/bundle"
	simpleSigningType     = "cosign container image signature"
)

// signature is one cosign signature layer of an image.
type signature struct {
	payload   []byte
	sig       []byte
	cert      []byte // PEM leaf certificate (keyless), optional
	chain     []byte // PEM intermediates, optional
	bundle    []byte // Rekor bundle JSON, optional
	malformed string // why the layer could not be read, if it could not

	// A Sigstore bundle's DSSE envelope signs its pre-authentication
	// encoding, not the payload itself.
	dsse        bool
	signed      []byte
	payloadType string
}

// message is what the signature covers.
func (s *signature) message() []byte {
	if s.dsse {
		return s.signed
	}
	return s.payload
}

type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

// verifier checks signatures for one attestor; built once per attestor
// definition and reused for every image.
type verifier struct {
	name     string
	keys     []crypto.PublicKey
	fps      []string // fingerprints of keys (SHA-256 of the PKIX DER)
	keyless  *keyless
	tlog     string // required, optional, ignore
	rekorKey crypto.PublicKey
}

type keyless struct {
	roots              *x509.CertPool
	issuer, subject    string
	issuerRE, subjectR *regexp.Regexp
}

func newVerifier(a *policy.Attestor) (*verifier, error) {
	v := &verifier{name: a.Metadata.Name, tlog: a.Spec.TransparencyLog}
	if v.tlog == "" {
		v.tlog = "optional"
	}
	for i, k := range a.Spec.PublicKeys {
		pub, err := parsePublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("attestor %s: publicKeys[%d]: %w", v.name, i, err)
		}
		v.keys = append(v.keys, pub)
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, fmt.Errorf("attestor %s: publicKeys[%d]: %w", v.name, i, err)
		}
		sum := sha256.Sum256(der)
		v.fps = append(v.fps, string(sum[:]))
	}
	if kl := a.Spec.Keyless; kl != nil {
		v.keyless = &keyless{roots: x509.NewCertPool(), issuer: kl.Issuer, subject: kl.Subject}
		if kl.FulcioRoots != "" && !v.keyless.roots.AppendCertsFromPEM([]byte(kl.FulcioRoots)) {
			return nil, fmt.Errorf("attestor %s: keyless.fulcioRoots: no certificate", v.name)
		}
		var err error
		if kl.IssuerRegExp != "" {
			if v.keyless.issuerRE, err = regexp.Compile(kl.IssuerRegExp); err != nil {
				return nil, err
			}
		}
		if kl.SubjectRegExp != "" {
			if v.keyless.subjectR, err = regexp.Compile(kl.SubjectRegExp); err != nil {
				return nil, err
			}
		}
		if kl.RekorPublicKey != "" {
			if v.rekorKey, err = parsePublicKey(kl.RekorPublicKey); err != nil {
				return nil, fmt.Errorf("attestor %s: keyless.rekorPublicKey: %w", v.name, err)
			}
		}
	}
	return v, nil
}

func parsePublicKey(s string) (crypto.PublicKey, error) {
	b, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if b == nil {
		return nil, errors.New("not a PEM public key")
	}
	return x509.ParsePKIXPublicKey(b.Bytes)
}

// verify decides whether any of the image's signatures is this attestor's,
// for this digest. It returns nil or a *VerificationError saying why not.
//
// owners (optional, one per signature) records which key a signature
// verified with, shared by the attestors checking one image: a signature
// known to be another key's is not verified again with this attestor's keys,
// so n attestors over n signatures cost about n verifications, not n²/2.
// start rotates where the scan begins, so that attestors checked in
// parallel do not all verify the same signature first.
func (v *verifier) verify(digest string, sigs []signature, owners []atomic.Pointer[string], start int) error {
	if len(sigs) == 0 {
		return &VerificationError{Reason: "no signatures found"}
	}
	var otherDigest, badPayload, badTlog, badCert string
	for j := range sigs {
		i := (start + j) % len(sigs)
		s := &sigs[i]
		if s.malformed != "" {
			badPayload = s.malformed
			continue
		}
		var owner *atomic.Pointer[string]
		if owners != nil {
			owner = &owners[i]
		}
		if err := v.signedBy(s, owner); err != nil {
			if s.cert != nil && v.keyless != nil {
				badCert = err.Error()
			}
			continue
		}
		if got, err := signedDigest(s, digest); err != nil {
			badPayload = err.Error()
			continue
		} else if got != "" {
			otherDigest = got
			continue
		}
		if err := v.checkTlog(s); err != nil {
			badTlog = err.Error()
			continue
		}
		return nil
	}
	switch {
	case otherDigest != "":
		return &VerificationError{Reason: fmt.Sprintf("signature is for another image digest (%s): digest mismatch", otherDigest)}
	case badTlog != "":
		return &VerificationError{Reason: badTlog}
	case badCert != "":
		return &VerificationError{Reason: badCert}
	case badPayload != "":
		return &VerificationError{Reason: "bad signature payload: " + badPayload}
	}
	return &VerificationError{Reason: "no matching signatures: signed by another key"}
}

// signedDigest returns the digest a signature is about when it is not
// digest, or why its payload is not an image signature.
func signedDigest(s *signature, digest string) (string, error) {
	if s.dsse {
		return checkStatement(s, digest)
	}
	var p simpleSigning
	if err := json.Unmarshal(s.payload, &p); err != nil || p.Critical.Type != simpleSigningType {
		return "", errors.New("signature payload is not a cosign simple signing document")
	}
	if got := p.Critical.Image.DockerManifestDigest; got != digest {
		return got, nil
	}
	return "", nil
}

// signedBy checks that the signature was made by one of the attestor's keys,
// or by a certificate that is the attestor's keyless identity.
func (v *verifier) signedBy(s *signature, owner *atomic.Pointer[string]) error {
	var known *string
	if owner != nil {
		known = owner.Load()
	}
	for i, k := range v.keys {
		if known != nil {
			if *known == v.fps[i] {
				return nil // this very key verified it for another attestor
			}
			continue // verified earlier with another key
		}
		if verifySig(k, s.message(), s.sig) {
			if owner != nil {
				owner.Store(&v.fps[i])
			}
			return nil
		}
	}
	if v.keyless != nil && s.cert != nil {
		cert, err := v.keyless.check(s)
		if err != nil {
			return err
		}
		if verifySig(cert.PublicKey, s.message(), s.sig) {
			return nil
		}
		return errors.New("signature does not verify with its certificate")
	}
	return errors.New("no key verifies the signature")
}

// verifySig verifies as cosign signs: ECDSA and RSA (PKCS#1 v1.5) over the
// SHA-256 of the payload (the curve's own hash is accepted for P-384 and
// P-521), Ed25519 over the payload itself.
func verifySig(key crypto.PublicKey, payload, sig []byte) bool {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		h := sha256.Sum256(payload)
		if ecdsa.VerifyASN1(k, h[:], sig) {
			return true
		}
		switch k.Curve.Params().BitSize {
		case 384:
			h := sha512.Sum384(payload)
			return ecdsa.VerifyASN1(k, h[:], sig)
		case 521:
			h := sha512.Sum512(payload)
			return ecdsa.VerifyASN1(k, h[:], sig)
		}
	case *rsa.PublicKey:
		h := sha256.Sum256(payload)
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil || rsa.VerifyPSS(k, crypto.SHA256, h[:], sig, nil) == nil
	case ed25519.PublicKey:
		return ed25519.Verify(k, payload, sig)
	}
	return false
}

// Fulcio certificate extensions naming the OIDC issuer.
var (
	oidIssuerV1 = []int{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = []int{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// check verifies a keyless signature's certificate: chained to the
// attestor's Fulcio roots (at the time the transparency log saw it, when
// there is a bundle) and naming the attestor's issuer and subject.
func (k *keyless) check(s *signature) (*x509.Certificate, error) {
	b, _ := pem.Decode(s.cert)
	if b == nil {
		return nil, errors.New("signature certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signature certificate: %v", err)
	}
	inter := x509.NewCertPool()
	if s.chain != nil {
		inter.AppendCertsFromPEM(s.chain)
	}
	at := time.Now()
	if t, ok := bundleTime(s.bundle); ok {
		at = t
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: k.roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
		return nil, fmt.Errorf("certificate not issued by the attestor's Fulcio roots: %v", err)
	}
	issuer := certIssuer(cert)
	if (k.issuer != "" && issuer != k.issuer) || (k.issuerRE != nil && !k.issuerRE.MatchString(issuer)) {
		return nil, fmt.Errorf("certificate issuer %q is not the attestor's", issuer)
	}
	for _, subject := range certSubjects(cert) {
		if (k.subject == "" || subject == k.subject) && (k.subjectR == nil || k.subjectR.MatchString(subject)) {
			return cert, nil
		}
	}
	return nil, fmt.Errorf("certificate identity %q is not the attestor's", certSubjects(cert))
}

func certIssuer(c *x509.Certificate) string {
	for _, e := range c.Extensions {
		switch {
		case e.Id.Equal(oidIssuerV2):
			var s string
			if _, err := asn1.Unmarshal(e.Value, &s); err == nil {
				return s
			}
		case e.Id.Equal(oidIssuerV1):
			return string(e.Value)
		}
	}
	return ""
}

func certSubjects(c *x509.Certificate) []string {
	out := append([]string(nil), c.EmailAddresses...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return out
}

// rekorBundle is cosign's dev.sigstore.cosign/bundle annotation.
type rekorBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

func bundleTime(b []byte) (time.Time, bool) {
	var rb rekorBundle
	if b == nil || json.Unmarshal(b, &rb) != nil || rb.Payload.IntegratedTime == 0 {
		return time.Time{}, false
	}
	return time.Unix(rb.Payload.IntegratedTime, 0), true
}

// checkTlog applies the attestor's transparencyLog mode: a Rekor bundle is
// verified offline (its signed entry timestamp against the attestor's Rekor
// key, its entry against this signature) when required, or when present and
// a key is known.
func (v *verifier) checkTlog(s *signature) error {
	switch {
	case v.tlog == "ignore":
		return nil
	case s.bundle == nil && v.tlog == "required":
		return errors.New("transparencyLog is required but the signature has no Rekor bundle")
	case s.bundle == nil:
		return nil
	case v.rekorKey == nil && v.tlog == "required":
		return errors.New("transparencyLog is required but the attestor has no keyless.rekorPublicKey")
	case v.rekorKey == nil:
		return nil
	}
	var rb rekorBundle
	if err := json.Unmarshal(s.bundle, &rb); err != nil {
		return fmt.Errorf("Rekor bundle: %v", err)
	}
	// The signed entry timestamp covers the canonical JSON of the payload
	// (keys sorted, no spaces).
	canon, _ := json.Marshal(struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogID          string `json:"logID"`
		LogIndex       int64  `json:"logIndex"`
	}{rb.Payload.Body, rb.Payload.IntegratedTime, rb.Payload.LogID, rb.Payload.LogIndex})
	if !verifySig(v.rekorKey, canon, rb.SignedEntryTimestamp) {
		return errors.New("Rekor bundle: signed entry timestamp does not verify with the attestor's Rekor key")
	}
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil {
		return fmt.Errorf("Rekor bundle body: %v", err)
	}
	if s.dsse {
		if !dsseEntryMatches(body, s) {
			return errors.New("Rekor bundle records another signature")
		}
		return nil
	}
	var entry struct {
		Spec struct {
			Data struct {
				Hash struct{ Algorithm, Value string } `json:"hash"`
			} `json:"data"`
			Signature struct {
				Content string `json:"content"`
			} `json:"signature"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &entry); err != nil {
		return fmt.Errorf("Rekor entry: %v", err)
	}
	sum := sha256.Sum256(s.payload)
	sig, _ := base64.StdEncoding.DecodeString(entry.Spec.Signature.Content)
	if entry.Spec.Data.Hash.Value != fmt.Sprintf("%x", sum) || !bytes.Equal(sig, s.sig) {
		return errors.New("Rekor bundle records another signature")
	}
	return nil
}
