package attestation

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imagegate/imagegate/policy"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// verifier is one attestor compiled for the cosign and sigstore-go
// libraries, built once per attestor definition and reused for every image.
// It does no cryptography itself: it chooses the libraries' options from the
// attestor (which keys, which identity, which trust material, which of the
// transparency log, CT log and timestamps to require) and reads their
// verdicts.
type verifier struct {
	name     string
	keys     []signature.Verifier
	fps      []string         // per key: SHA-256 of its PKIX DER, shared by every verifier of that key
	identity *cosign.Identity // keyless; nil when the attestor has none
	trust    *trust
	tlog     string
	ctlog    string
	tsa      string
}

func newVerifier(a *policy.Attestor, publicRoot func() (root.TrustedMaterial, error)) (*verifier, error) {
	v := &verifier{name: a.Metadata.Name, tlog: a.Spec.TLogMode(), ctlog: a.Spec.CTLogMode(), tsa: a.Spec.TimestampMode()}
	for i, k := range a.Spec.PublicKeys {
		pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(strings.TrimSpace(k)))
		if err != nil {
			return nil, fmt.Errorf("attestor %s: publicKeys[%d]: %w", v.name, i, err)
		}
		// cosign verify --key hashes with SHA-256 by default, but cosign
		// sign hashes with the key's own algorithm (SHA-384 for P-384):
		// a signature made either way verifies, as with cosign verify
		// --signature-digest-algorithm.
		sv, err := signature.LoadVerifier(pub, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("attestor %s: publicKeys[%d]: %w", v.name, i, err)
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, fmt.Errorf("attestor %s: publicKeys[%d]: %w", v.name, i, err)
		}
		sum := sha256.Sum256(der)
		fp := string(sum[:])
		v.keys, v.fps = append(v.keys, sv), append(v.fps, fp)
		if k, ok := pub.(*ecdsa.PublicKey); ok && k.Curve != elliptic.P256() {
			if def, err := signature.LoadDefaultVerifier(pub); err == nil {
				v.keys, v.fps = append(v.keys, def), append(v.fps, fp)
			}
		}
	}
	if kl := a.Spec.Keyless; kl != nil {
		v.identity = &cosign.Identity{Issuer: kl.Issuer, IssuerRegExp: kl.IssuerRegExp, Subject: kl.Subject, SubjectRegExp: kl.SubjectRegExp}
	}
	t, err := trustFor(a, publicRoot)
	if err != nil {
		return nil, fmt.Errorf("attestor %s: %w", v.name, err)
	}
	v.trust = t
	return v, nil
}

// use applies a required/optional/ignore mode: whether the libraries must
// check a kind of evidence for this signature. Optional evidence is checked
// when the signature carries it and the attestor trusts someone to vouch for
// it; evidence that is checked must verify.
func use(mode string, present, trusted bool) bool {
	switch mode {
	case policy.ModeRequired:
		return true
	case policy.ModeIgnore:
		return false
	}
	return present && trusted
}

// evidence says what a signature carries, and what the attestor requires of
// it before the libraries are asked: a required log entry or timestamp that
// is absent is a plain refusal. (cosign's --use-signed-timestamps accepts a
// signature without a timestamp; signedTimestamps: required does not.)
func (v *verifier) evidence(hasTlog, hasTS bool) (useTlog, useTS bool, err error) {
	switch {
	case v.tlog == policy.ModeRequired && !hasTlog:
		return false, false, &VerificationError{Reason: "transparencyLog is required but the signature carries no Rekor entry"}
	case v.tsa == policy.ModeRequired && !hasTS:
		return false, false, &VerificationError{Reason: "signedTimestamps is required but the signature carries no RFC 3161 timestamp"}
	}
	rekor, tsa, err := v.trust.vouchers()
	if err != nil {
		return false, false, err
	}
	return use(v.tlog, hasTlog, rekor), use(v.tsa, hasTS, tsa), nil
}

// legacyEvidence is evidence for a .sig or .att layer, refusing one whose
// log entry or timestamp is to be checked but does not parse.
func (v *verifier) legacyEvidence(s *legacySig) (useTlog, useTS bool, err error) {
	useTlog, useTS, err = v.evidence(s.bundle != nil, s.timestamp != nil)
	switch {
	case err != nil:
	case useTlog && s.bundleErr != "":
		err = &VerificationError{Reason: s.bundleErr}
	case useTS && s.timestampErr != "":
		err = &VerificationError{Reason: s.timestampErr}
	}
	return useTlog, useTS, err
}

// candidates are the ways the attestor may have signed: each key, then the
// keyless identity (a nil verifier: the certificate on the signature), with
// each key's fingerprint ("" for keyless).
func (v *verifier) candidates() ([]signature.Verifier, []string) {
	out, fps := v.keys, v.fps
	if v.identity != nil {
		out, fps = append(out[:len(out):len(out)], nil), append(fps[:len(fps):len(fps)], "")
	}
	return out, fps
}

// checkOpts is cosign's configuration for one candidate.
func (v *verifier) checkOpts(sv signature.Verifier, useTlog, useTS, bundle bool) (*cosign.CheckOpts, error) {
	co := &cosign.CheckOpts{
		SigVerifier:         sv,
		IgnoreTlog:          !useTlog,
		IgnoreSCT:           v.ctlog == policy.ModeIgnore,
		UseSignedTimestamps: useTS,
		Offline:             true,
		ClaimVerifier:       simpleSigningClaims,
	}
	if sv == nil {
		co.Identities = []cosign.Identity{*v.identity}
	}
	tm, err := v.trust.resolve()
	if err != nil {
		return nil, err
	}
	switch {
	case v.trust.roots != nil && !bundle:
		co.RootCerts, co.RekorPubKeys = v.trust.roots, v.trust.rekor
	case tm != nil:
		co.TrustedMaterial = tm
	case bundle:
		// sigstore-go needs trust material even for a key alone.
		co.TrustedMaterial = root.TrustedMaterialCollection{}
	}
	return co, nil
}

// verifyLegacy checks one legacy (.sig layer) signature with
// cosign.VerifyImageSignature, for each way the attestor may have signed.
func (v *verifier) verifyLegacy(ctx context.Context, s *legacySig, h v1.Hash, o *owner) error {
	useTlog, useTS, err := v.legacyEvidence(s)
	if err != nil {
		return err
	}
	var errs []error
	svs, fps := v.candidates()
	for i, sv := range svs {
		if sv == nil && s.cert == nil {
			errs = append(errs, errNoCertificate)
			continue
		}
		if skip(o, fps[i]) {
			errs = append(errs, errAnotherKey)
			continue
		}
		co, err := v.checkOpts(sv, useTlog, useTS, false)
		if err != nil {
			return err
		}
		if s.claims != nil {
			co.ClaimVerifier = s.claims.verify
		}
		sig, err := s.signature()
		if err != nil {
			return &VerificationError{Reason: "bad signature layer: " + err.Error()}
		}
		if err := safely(func() error { _, err := cosign.VerifyImageSignature(ctx, sig, h, co); return err }); err != nil {
			errs = append(errs, err)
			continue
		}
		own(o, fps[i])
		return nil
	}
	return refusal(errs)
}

// verifyBundle checks one Sigstore bundle with sigstore-go (through
// cosign.VerifyNewBundle, as cosign verify does): signature, certificate
// chain and identity, SCTs, log entries with inclusion proofs or promises,
// timestamps, and that the in-toto statement's subject is the image digest.
// It returns the verified statement's predicate type.
func (v *verifier) verifyBundle(ctx context.Context, b *sgbundle.Bundle, h v1.Hash, o *owner) (string, error) {
	res, err := v.verifyBundleResult(ctx, b, h, o)
	if err != nil {
		return "", err
	}
	return res.Statement.GetPredicateType(), nil
}

// verifyBundleStatement is verifyBundle returning the verified statement.
func (v *verifier) verifyBundleStatement(ctx context.Context, b *sgbundle.Bundle, h v1.Hash) ([]byte, error) {
	res, err := v.verifyBundleResult(ctx, b, h, nil)
	if err != nil {
		return nil, err
	}
	return protojson.Marshal(res.Statement)
}

func (v *verifier) verifyBundleResult(ctx context.Context, b *sgbundle.Bundle, h v1.Hash, o *owner) (*verify.VerificationResult, error) {
	entries, _ := b.TlogEntries()
	ts, _ := b.Timestamps()
	useTlog, useTS, err := v.evidence(len(entries) > 0, len(ts) > 0)
	if err != nil {
		return nil, err
	}
	digest, err := hex.DecodeString(h.Hex)
	if err != nil {
		return nil, &VerificationError{Reason: "malformed digest " + h.String()}
	}
	var errs []error
	svs, fps := v.candidates()
	for i, sv := range svs {
		if skip(o, fps[i]) {
			errs = append(errs, errAnotherKey)
			continue
		}
		co, err := v.checkOpts(sv, useTlog, useTS, true)
		if err != nil {
			return nil, err
		}
		var res *verify.VerificationResult
		err = safely(func() (err error) {
			res, err = cosign.VerifyNewBundle(ctx, co, verify.WithArtifactDigest(h.Algorithm, digest), b)
			return err
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if res.Statement == nil {
			return nil, &VerificationError{Reason: "Sigstore bundle signs a blob, not an image (no in-toto statement)"}
		}
		own(o, fps[i])
		return res, nil
	}
	return nil, refusal(errs)
}

// verifyAttestation checks one legacy .att layer (a DSSE envelope) with
// cosign, including that its in-toto subject is the image digest, and
// returns the verified envelope's statement.
func (v *verifier) verifyAttestation(ctx context.Context, s *legacySig, h v1.Hash) ([]byte, error) {
	useTlog, useTS, err := v.legacyEvidence(s)
	if err != nil {
		return nil, err
	}
	var errs []error
	svs, _ := v.candidates()
	for _, sv := range svs {
		if sv == nil && s.cert == nil {
			errs = append(errs, errNoCertificate)
			continue
		}
		co, err := v.checkOpts(sv, useTlog, useTS, false)
		if err != nil {
			return nil, err
		}
		co.ClaimVerifier = cosign.IntotoSubjectClaimVerifier
		att, err := s.attestation()
		if err != nil {
			return nil, &VerificationError{Reason: "bad attestation layer: " + err.Error()}
		}
		if err := safely(func() error { _, err := cosign.VerifyBlobAttestation(ctx, att, h, co); return err }); err != nil {
			errs = append(errs, err)
			continue
		}
		return statementOf(s.payload)
	}
	return nil, refusal(errs)
}

// safely runs a library verification, turning a panic into a refusal: the
// material is the registry's, and a crafted timestamp panics cosign v2.6.5
// (VerifyRFC3161Timestamp indexes an empty list when every timestamp fails).
// The webhook must answer, and material that crashes the verifier does not
// verify.
func safely(verify func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &VerificationError{Reason: fmt.Sprintf("signature material made the verifier fail: %v", r)}
		}
	}()
	return verify()
}

// statementOf is a verified DSSE envelope's payload.
func statementOf(envelope []byte) ([]byte, error) {
	var env struct {
		Payload []byte `json:"payload"`
	}
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, &VerificationError{Reason: "attestation is not a DSSE envelope: " + err.Error()}
	}
	return env.Payload, nil
}

var (
	errNoCertificate = errors.New("no certificate found on signature")
	errAnotherKey    = errors.New("verified with another key")
)

// refusal summarises why none of a signature's candidates verified: a
// signature for another digest says most, then what the libraries said about
// certificates, logs and timestamps, then a plain "another key".
func refusal(errs []error) error {
	var ce *claimError
	for _, err := range errs {
		if errors.As(err, &ce) {
			return &VerificationError{Reason: ce.reason}
		}
	}
	for _, err := range errs {
		// sigstore-go: the statement's subject is another artifact.
		if strings.Contains(err.Error(), "artifact digest") {
			return &VerificationError{Reason: "Sigstore bundle statement is about another image digest: digest mismatch"}
		}
	}
	for _, err := range errs {
		if err != errNoCertificate && err != errAnotherKey && !isBadSignature(err) {
			return &VerificationError{Reason: err.Error()}
		}
	}
	return &VerificationError{Reason: "no matching signatures: signed by another key"}
}

// isBadSignature is a signature that does not verify with the key at hand
// (as opposed to a refused certificate, log entry or timestamp).
func isBadSignature(err error) bool {
	s := err.Error()
	if strings.Contains(s, "log inclusion") {
		// sigstore-go: the log entry (its checkpoint signature, say) did
		// not verify, which says more than "another key".
		return false
	}
	return strings.Contains(s, "invalid signature") || strings.Contains(s, "failed to verify signature") ||
		strings.Contains(s, "verification error") || strings.Contains(s, "signature verification failed")
}

// signPredicateType is the in-toto predicate of cosign's image signature
// bundles.
const signPredicateType = "https://sigstore.dev/cosign/sign/v1"

// verify decides whether any of the image's signatures is this attestor's,
// for this digest. As cosign verify does, an image with signature bundles is
// judged by them alone; otherwise by its legacy .sig signatures. It returns
// nil, a *VerificationError saying why not, or an *UnverifiableError when
// the attestor's trust material could not be had.
//
// start rotates where the scan begins, so that attestors checked in parallel
// do not all verify the same signature first; pick steers each away from
// signatures other attestors are verifying.
func (v *verifier) verify(digest string, s *signatures, start int) error {
	h, err := v1.NewHash(digest)
	if err != nil {
		return &VerificationError{Reason: fmt.Sprintf("malformed digest %q", digest)}
	}
	// Verification is offline CPU work; the request's deadline bounded the
	// fetch, and a verdict is shared by every request.
	ctx := context.Background()
	var errs []error
	if n := len(s.bundles); n > 0 {
		tried, rank := make([]bool, n), v.ranks(s.bundles)
		for i := pick(s.bundleOwners, rank, tried, start); i >= 0; i = pick(s.bundleOwners, rank, tried, start) {
			tried[i] = true
			o := &s.bundleOwners[i]
			o.trying.Add(1)
			pt, err := v.verifyBundle(ctx, s.bundles[i].b, h, o)
			o.trying.Add(-1)
			if err == nil && pt == signPredicateType {
				return nil
			}
			if err == nil {
				err = &VerificationError{Reason: fmt.Sprintf("Sigstore bundle predicate %q is not an image signature", pt)}
			}
			errs = append(errs, err)
		}
		return summarize(errs)
	}
	if s.legacyErr != nil {
		return s.legacyErr
	}
	if len(s.legacy) == 0 {
		return &VerificationError{Reason: "no signatures found"}
	}
	tried := make([]bool, len(s.legacy))
	for i := pick(s.legacyOwners, nil, tried, start); i >= 0; i = pick(s.legacyOwners, nil, tried, start) {
		tried[i] = true
		o := &s.legacyOwners[i]
		o.trying.Add(1)
		err := v.verifyLegacy(ctx, &s.legacy[i], h, o)
		o.trying.Add(-1)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return summarize(errs)
}

// summarize picks the most telling reason among the image's signatures:
// trust material that could not be had, then a signature for another
// digest, then anything but "another key".
func summarize(errs []error) error {
	for _, err := range errs {
		if _, ok := err.(*UnverifiableError); ok {
			return err
		}
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), "digest mismatch") {
			return err
		}
	}
	for _, err := range errs {
		if !strings.Contains(err.Error(), "signed by another key") {
			return err
		}
	}
	return errs[0]
}
