package sigstoretest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Sign signs message with key the way cosign does: ECDSA and RSA (PKCS #1
// v1.5) over its hash, Ed25519 over the message itself.
func Sign(key crypto.Signer, hash crypto.Hash, message []byte) ([]byte, error) {
	s, err := signature.LoadSigner(key, hash)
	if err != nil {
		return nil, err
	}
	return s.SignMessage(bytes.NewReader(message))
}

// Timestamp has p's timestamp authority sign an RFC 3161 timestamp over
// data, stating the time at, and returns the DER response.
func (p *PKI) Timestamp(data []byte, at time.Time) ([]byte, error) {
	req, err := timestamp.CreateRequest(bytes.NewReader(data), &timestamp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		return nil, err
	}
	parsed, err := timestamp.ParseRequest(req)
	if err != nil {
		return nil, err
	}
	ts := timestamp.Timestamp{HashAlgorithm: parsed.HashAlgorithm, HashedMessage: parsed.HashedMessage,
		Time: at, Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2}}
	return ts.CreateResponseWithOpts(p.TSALeaf, p.tsaKey, crypto.SHA256)
}

// SimpleSigningType is the critical.type of cosign's image signatures.
const SimpleSigningType = "cosign container image signature"

// SimpleSigning is cosign's signature payload for the image digest in repo
// ("host/path"), with critical.type typ.
func SimpleSigning(repo, digest, typ string) []byte {
	b, err := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": repo},
			"image":    map[string]string{"docker-manifest-digest": digest},
			"type":     typ,
		},
		"optional": nil,
	})
	if err != nil {
		panic(err)
	}
	return b
}

// InTotoPayloadType is the DSSE payload type of in-toto statements.
const InTotoPayloadType = "application/vnd.in-toto+json"

// CosignSignPredicate is the predicate type of `cosign sign --new-bundle-format`.
const CosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"

// Statement is an in-toto v1 statement about one subject, as JSON.
func Statement(subjectName, sha256Hex, predicateType string) []byte {
	return []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":%q,"digest":{"sha256":%q}}],"predicateType":%q,"predicate":{}}`,
		subjectName, sha256Hex, predicateType))
}

// Envelope signs payload into a DSSE envelope, one signature per key.
func Envelope(payloadType string, payload []byte, keys ...crypto.Signer) (*dsse.Envelope, error) {
	env := &dsse.Envelope{PayloadType: payloadType, Payload: b64(payload)}
	pae := dsse.PAE(payloadType, payload)
	for _, k := range keys {
		sig, err := Sign(k, crypto.SHA256, pae)
		if err != nil {
			return nil, err
		}
		env.Signatures = append(env.Signatures, dsse.Signature{Sig: b64(sig)})
	}
	return env, nil
}

// SignDigest signs a SHA-256 digest with key (a messageSignature over an artifact).
func SignDigest(key crypto.Signer, digest []byte) ([]byte, error) {
	return key.Sign(rand.Reader, digest, crypto.SHA256)
}
