package attestation

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"

	"github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
)

// Annotations cosign puts on a signature or attestation layer.
const (
	annotationSignature   = "dev.cosignproject.cosign/signature"
	annotationCertificate = "dev.sigstore.cosign/certificate"
	annotationChain       = "dev.sigstore.cosign/chain"
	annotationBundle      = "dev.sigstore.cosign/bundle"
	annotationTimestamp   = "dev.sigstore.cosign/rfc3161timestamp"
)

// legacySig is one layer of cosign's sha256-<hex>.sig (or .att) image as the
// registry served it: what cosign's own OCI layer reader would hand to its
// verifier. It is turned into a cosign oci.Signature for each verification
// (cosign may adjust a parsed certificate, so none is shared).
type legacySig struct {
	payload     []byte
	b64sig      string
	cert, chain []byte
	claims      *sharedClaims // nil: decoded per verification
	bundle      *bundle.RekorBundle
	timestamp   *bundle.RFC3161Timestamp
	// Why an annotation does not parse; it matters only when the attestor
	// checks that kind of evidence, as for cosign.
	bundleErr, timestampErr string
}

// newLegacySig reads a layer's annotations. An annotation that does not
// parse makes the signature unusable, as it does for cosign.
func newLegacySig(ann map[string]string, payload []byte) legacySig {
	s := legacySig{payload: payload, b64sig: ann[annotationSignature],
		cert: optional(ann[annotationCertificate]), chain: optional(ann[annotationChain])}
	if b := ann[annotationBundle]; b != "" {
		s.bundle = new(bundle.RekorBundle)
		if err := json.Unmarshal([]byte(b), s.bundle); err != nil {
			s.bundleErr = "Rekor bundle annotation: " + err.Error()
		}
	}
	if t := ann[annotationTimestamp]; t != "" {
		s.timestamp = new(bundle.RFC3161Timestamp)
		if err := json.Unmarshal([]byte(t), s.timestamp); err != nil {
			s.timestampErr = "RFC 3161 timestamp annotation: " + err.Error()
		}
	}
	return s
}

func (s *legacySig) options() []static.Option {
	var opts []static.Option
	if s.cert != nil {
		opts = append(opts, static.WithCertChain(s.cert, s.chain))
	}
	if s.bundle != nil {
		opts = append(opts, static.WithBundle(s.bundle))
	}
	if s.timestamp != nil {
		opts = append(opts, static.WithRFC3161Timestamp(s.timestamp))
	}
	return opts
}

func (s *legacySig) signature() (oci.Signature, error) {
	return static.NewSignature(s.payload, s.b64sig, s.options()...)
}

func (s *legacySig) attestation() (oci.Signature, error) {
	return static.NewAttestation(s.payload, s.options()...)
}

// size approximates the bytes the signature holds in the cache.
func (s *legacySig) size() int64 {
	n := len(s.payload) + len(s.b64sig) + len(s.cert) + len(s.chain) + 64
	if s.claims != nil {
		n += len(s.payload) // its decoded document, counted with each sharer
	}
	if s.bundle != nil {
		n += len(s.bundle.SignedEntryTimestamp) + 256
		if body, ok := s.bundle.Payload.Body.(string); ok {
			n += len(body)
		}
	}
	if s.timestamp != nil {
		n += len(s.timestamp.SignedRFC3161Timestamp)
	}
	return int64(n)
}

func optional(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// sigBundle is a Sigstore bundle read from a referrer, parsed by sigstore-go
// (which refuses unknown media types and versions and malformed material).
type sigBundle struct {
	b         *sgbundle.Bundle
	predicate string // the statement's predicate type as written, for routing only
	keyHint   string // the key it names (SHA-256 of its PKIX DER), for ordering only
	raw       int64
}

// parseBundle parses a referrer's bundle; a bundle sigstore-go refuses is
// skipped, as cosign skips it.
func parseBundle(raw []byte) (sigBundle, error) {
	b := new(sgbundle.Bundle)
	if err := b.UnmarshalJSON(raw); err != nil {
		return sigBundle{}, err
	}
	sb := sigBundle{b: b, raw: int64(len(raw))}
	// cosign names the signing key in the bundle (base64 of the SHA-256 of
	// its PKIX DER). Unauthenticated: it only orders the attestors' attempts
	// (see verifier.ranks), each bundle is still tried until one verifies.
	if h, err := base64.StdEncoding.DecodeString(b.GetVerificationMaterial().GetPublicKey().GetHint()); err == nil && len(h) == sha256.Size {
		sb.keyHint = string(h)
	}
	if env := b.GetDsseEnvelope(); env != nil {
		// Routing only: the verified statement decides (verifyBundle).
		var st struct {
			PredicateType string `json:"predicateType"`
		}
		if json.Unmarshal(env.GetPayload(), &st) == nil {
			sb.predicate = st.PredicateType
		}
	}
	return sb, nil
}
