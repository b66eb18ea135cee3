package attestation

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Sigstore bundles are what cosign stores with --new-bundle-format (the
// default from cosign v3): an OCI 1.1 referrer of the image, found through
// the registry's referrers API or, on registries without it, the referrers
// tag sha256-<hex>. The bundle's DSSE envelope signs an in-toto statement
// whose subject is the image digest.
const (
	bundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	signPredicateType  = "https://sigstore.dev/cosign/sign/v1"
	inTotoPayloadType  = "application/vnd.in-toto+json"
	// maxReferrers bounds the work one image can cause; an image with more
	// signature bundles than this is unusual enough to read only the first.
	maxReferrers = 16
)

// sigstoreBundle is the part of a Sigstore bundle (protobuf-specs v0.3, in
// its JSON form: int64 as strings, bytes as base64) that imagegate reads.
type sigstoreBundle struct {
	MediaType            string `json:"mediaType"`
	VerificationMaterial struct {
		Certificate *struct {
			RawBytes []byte `json:"rawBytes"`
		} `json:"certificate"`
		X509CertificateChain *struct {
			Certificates []struct {
				RawBytes []byte `json:"rawBytes"`
			} `json:"certificates"`
		} `json:"x509CertificateChain"`
		TlogEntries []struct {
			LogIndex string `json:"logIndex"`
			LogID    struct {
				KeyID []byte `json:"keyId"`
			} `json:"logId"`
			IntegratedTime   string `json:"integratedTime"`
			InclusionPromise *struct {
				SignedEntryTimestamp []byte `json:"signedEntryTimestamp"`
			} `json:"inclusionPromise"`
			CanonicalizedBody []byte `json:"canonicalizedBody"`
		} `json:"tlogEntries"`
	} `json:"verificationMaterial"`
	DSSEEnvelope     *envelope       `json:"dsseEnvelope"`
	MessageSignature json.RawMessage `json:"messageSignature"`
}

// fetchBundles reads the image's Sigstore bundle referrers. Signature
// bundles become signatures; attestation bundles (other predicate types)
// are returned as DSSE envelopes for the scan attestation path.
func (v *Verifier) fetchBundles(ctx context.Context, p *remote.Puller, repo name.Repository, digest string) ([]signature, [][]byte, error) {
	idx, err := remote.Referrers(repo.Digest(digest), remote.Reuse(p), remote.WithContext(ctx))
	if err != nil {
		if noReferrers(err) {
			return nil, nil, nil
		}
		return nil, nil, registryError("listing signature bundles (referrers)", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, registryError("reading referrers", err)
	}
	var sigs []signature
	var envelopes [][]byte
	n := 0
	for _, desc := range m.Manifests {
		if !mayBeBundle(desc.ArtifactType) || n == maxReferrers {
			continue
		}
		n++
		raw, err := v.readBundle(ctx, p, repo, desc.Digest.String())
		if err != nil {
			return nil, nil, err
		}
		if raw == nil {
			continue
		}
		s, env := parseBundle(raw)
		if env != nil {
			envelopes = append(envelopes, env)
			continue
		}
		sigs = append(sigs, s)
	}
	return sigs, envelopes, nil
}

// readBundle fetches a bundle referrer's manifest and its bundle layer.
func (v *Verifier) readBundle(ctx context.Context, p *remote.Puller, repo name.Repository, manifestDigest string) ([]byte, error) {
	desc, err := p.Get(ctx, repo.Digest(manifestDigest))
	if err != nil {
		return nil, registryError("fetching a signature bundle", err)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, registryError("reading a signature bundle", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, registryError("reading a signature bundle", err)
	}
	for _, l := range m.Layers {
		if string(l.MediaType) != bundleArtifactType {
			continue
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err == nil {
			var b []byte
			if b, err = readLayer(layer); err == nil {
				return b, nil
			}
		}
		return nil, registryError("fetching a signature bundle", err)
	}
	return nil, nil // another kind of artifact
}

// mayBeBundle: cosign v2 (and registries that derive a referrer's type from
// its config) list bundles with the empty config's media type, so only
// referrers of another declared type are skipped unread.
func mayBeBundle(artifactType string) bool {
	switch artifactType {
	case bundleArtifactType, "", "application/vnd.oci.empty.v1+json":
		return true
	}
	return false
}

// noReferrers reports a registry that answers the referrers API with a
// client error other than throttling: it has no bundles to offer, which is
// not a reason to fail verification of signatures found elsewhere.
func noReferrers(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode >= 400 && te.StatusCode < 500 &&
		te.StatusCode != http.StatusTooManyRequests && te.StatusCode != http.StatusUnauthorized && te.StatusCode != http.StatusForbidden
}

// parseBundle turns a signature bundle into a signature that the verifier
// checks like any other. An attestation bundle is returned as its DSSE
// envelope instead.
func parseBundle(raw []byte) (signature, []byte) {
	var b sigstoreBundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return signature{malformed: "Sigstore bundle is not JSON: " + err.Error()}, nil
	}
	if b.DSSEEnvelope == nil {
		if b.MessageSignature != nil {
			return signature{malformed: "Sigstore bundle signs a blob, not an image (messageSignature)"}, nil
		}
		return signature{malformed: "Sigstore bundle has no DSSE envelope"}, nil
	}
	env := b.DSSEEnvelope
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil || len(env.Signatures) == 0 {
		return signature{malformed: "Sigstore bundle envelope has no payload or no signature"}, nil
	}
	var st statement
	if json.Unmarshal(payload, &st) == nil && st.PredicateType != signPredicateType && st.PredicateType != "" {
		e, _ := json.Marshal(env)
		return signature{}, e
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		return signature{malformed: "Sigstore bundle signature is not base64"}, nil
	}
	s := signature{payload: payload, signed: pae(env.PayloadType, payload), sig: sig, dsse: true, payloadType: env.PayloadType}
	vm := &b.VerificationMaterial
	var certs [][]byte
	if vm.Certificate != nil {
		certs = append(certs, vm.Certificate.RawBytes)
	} else if vm.X509CertificateChain != nil {
		for _, c := range vm.X509CertificateChain.Certificates {
			certs = append(certs, c.RawBytes)
		}
	}
	if len(certs) > 0 {
		s.cert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0]})
		for _, c := range certs[1:] {
			s.chain = append(s.chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
		}
	}
	// The first entry with an inclusion promise stands for the log: it is
	// checked offline exactly as cosign's older Rekor bundle annotation.
	for _, e := range vm.TlogEntries {
		if e.InclusionPromise == nil {
			continue
		}
		var rb rekorBundle
		rb.SignedEntryTimestamp = e.InclusionPromise.SignedEntryTimestamp
		rb.Payload.Body = base64.StdEncoding.EncodeToString(e.CanonicalizedBody)
		rb.Payload.IntegratedTime, _ = strconv.ParseInt(e.IntegratedTime, 10, 64)
		rb.Payload.LogIndex, _ = strconv.ParseInt(e.LogIndex, 10, 64)
		rb.Payload.LogID = hex.EncodeToString(e.LogID.KeyID)
		s.bundle, _ = json.Marshal(rb)
		break
	}
	return s, nil
}

// checkStatement checks a signature bundle's in-toto statement: cosign's
// sign predicate about this digest.
func checkStatement(s *signature, digest string) (otherDigest string, err error) {
	if s.payloadType != inTotoPayloadType {
		return "", fmt.Errorf("Sigstore bundle payload type %q is not %s", s.payloadType, inTotoPayloadType)
	}
	var st statement
	if err := json.Unmarshal(s.payload, &st); err != nil {
		return "", errors.New("Sigstore bundle payload is not an in-toto statement")
	}
	if st.PredicateType != signPredicateType && st.PredicateType != "" {
		return "", fmt.Errorf("Sigstore bundle predicate %q is not an image signature", st.PredicateType)
	}
	if st.about(digest) {
		return "", nil
	}
	for _, sub := range st.Subject {
		for a, h := range sub.Digest {
			return a + ":" + h, nil
		}
	}
	return "", errors.New("Sigstore bundle statement names no subject digest")
}

// dsseEntryMatches checks a Rekor "dsse" entry against a bundle signature:
// the entry must record this payload and this signature.
func dsseEntryMatches(body []byte, s *signature) bool {
	var entry struct {
		Spec struct {
			PayloadHash struct{ Algorithm, Value string } `json:"payloadHash"`
			Signatures  []struct {
				Signature string `json:"signature"`
			} `json:"signatures"`
		} `json:"spec"`
	}
	if json.Unmarshal(body, &entry) != nil {
		return false
	}
	sum := sha256.Sum256(s.payload)
	if entry.Spec.PayloadHash.Value != hex.EncodeToString(sum[:]) {
		return false
	}
	want := base64.StdEncoding.EncodeToString(s.sig)
	for _, sig := range entry.Spec.Signatures {
		if sig.Signature == want {
			return true
		}
	}
	return false
}
