package sigstoretest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/go-openapi/runtime"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/rekor/pkg/pki"
	"github.com/sigstore/rekor/pkg/types"
	"github.com/sigstore/rekor/pkg/types/dsse"
	_ "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1" // registers the dsse kind
	"github.com/sigstore/rekor/pkg/types/hashedrekord"
	_ "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1" // registers the hashedrekord kind
	"github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Entry is a Rekor v1 log entry as a client sees it: the canonicalized
// body and what the log says about it.
type Entry struct {
	Kind, Version  string
	Body           []byte
	IntegratedTime int64
	LogIndex       int64
	LogID          []byte
	// SET is the signed entry timestamp (the inclusion promise).
	SET []byte
	// Proof is set by Prove.
	Proof *Proof
}

// Proof is an inclusion proof in a one-entry tree and its signed checkpoint.
type Proof struct {
	LogIndex, TreeSize int64
	RootHash           []byte
	Hashes             [][]byte
	Checkpoint         string
}

// HashedRekordBody canonicalizes a hashedrekord entry recording a signature
// sig over a blob whose SHA-256 is artifactSHA256, by pubOrCertPEM.
func HashedRekordBody(artifactSHA256 []byte, sig, pubOrCertPEM []byte) ([]byte, error) {
	return canonicalBody(hashedrekord.KIND, "0.0.1", types.ArtifactProperties{
		ArtifactHash:   hex.EncodeToString(artifactSHA256),
		SignatureBytes: sig,
		PublicKeyBytes: [][]byte{pubOrCertPEM},
		PKIFormat:      string(pki.X509),
	})
}

// DSSEBody canonicalizes a dsse entry for envelope (its JSON), whose
// signatures must verify with pubOrCertPEM.
func DSSEBody(envelope, pubOrCertPEM []byte) ([]byte, error) {
	return canonicalBody(dsse.KIND, "0.0.1", types.ArtifactProperties{
		ArtifactBytes:  envelope,
		PublicKeyBytes: [][]byte{pubOrCertPEM},
		PKIFormat:      string(pki.X509),
	})
}

func canonicalBody(kind, version string, props types.ArtifactProperties) ([]byte, error) {
	ctx := context.Background()
	proposed, err := types.NewProposedEntry(ctx, kind, version, props)
	if err != nil {
		return nil, err
	}
	impl, err := types.CreateVersionedEntry(proposed)
	if err != nil {
		return nil, err
	}
	can, err := types.CanonicalizeEntry(ctx, impl)
	if err != nil {
		return nil, err
	}
	// Round trip through the model, as the log does, to get its canonical form.
	pe, err := models.UnmarshalProposedEntry(bytes.NewReader(can), runtime.JSONConsumer())
	if err != nil {
		return nil, err
	}
	e, err := types.UnmarshalEntry(pe)
	if err != nil {
		return nil, err
	}
	return e.Canonicalize(ctx)
}

// rekorPayload is what a signed entry timestamp signs (canonical JSON).
type rekorPayload struct {
	Body           string `json:"body"`
	IntegratedTime int64  `json:"integratedTime"`
	LogIndex       int64  `json:"logIndex"`
	LogID          string `json:"logID"`
}

// Log has p's Rekor key admit body at integratedTime (Unix seconds) and
// sign the entry timestamp.
func (p *PKI) Log(kind, version string, body []byte, integratedTime int64) (*Entry, error) {
	e := &Entry{Kind: kind, Version: version, Body: body, IntegratedTime: integratedTime,
		LogIndex: 0, LogID: LogID(p.RekorKey.Public())}
	set, err := p.SignSET(e)
	if err != nil {
		return nil, err
	}
	e.SET = set
	return e, nil
}

// SignSET signs e's promise with p's Rekor key, whatever log ID e names.
func (p *PKI) SignSET(e *Entry) ([]byte, error) {
	b, err := json.Marshal(rekorPayload{Body: base64.StdEncoding.EncodeToString(e.Body),
		IntegratedTime: e.IntegratedTime, LogIndex: e.LogIndex, LogID: hex.EncodeToString(e.LogID)})
	if err != nil {
		return nil, err
	}
	can, err := jsoncanonicalizer.Transform(b)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(can)
	return ecdsa.SignASN1(rand.Reader, p.RekorKey, h[:])
}

// Prove gives e an inclusion proof in a tree holding only e, with a
// checkpoint signed by p's Rekor key over rootHash (the true root when nil).
func (p *PKI) Prove(e *Entry, rootHash []byte) error {
	leaf := sha256.Sum256(append([]byte{0}, e.Body...))
	if rootHash == nil {
		rootHash = leaf[:]
	}
	signer, err := signature.LoadECDSASignerVerifier(p.RekorKey, crypto.SHA256)
	if err != nil {
		return err
	}
	cp, err := util.CreateAndSignCheckpoint(context.Background(), "rekor.localhost", 1193050959916656506, 1, rootHash, signer)
	if err != nil {
		return err
	}
	e.Proof = &Proof{LogIndex: e.LogIndex, TreeSize: 1, RootHash: rootHash, Checkpoint: string(cp)}
	return nil
}

// LegacyBundle is cosign's dev.sigstore.cosign/bundle annotation value.
func (e *Entry) LegacyBundle() ([]byte, error) {
	type payload struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	}
	return json.Marshal(struct {
		SignedEntryTimestamp []byte  `json:"SignedEntryTimestamp"`
		Payload              payload `json:"Payload"`
	}{e.SET, payload{base64.StdEncoding.EncodeToString(e.Body), e.IntegratedTime, e.LogIndex, hex.EncodeToString(e.LogID)}})
}
