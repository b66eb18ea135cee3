package attestation_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	rekorpb "github.com/sigstore/rekor-tiles/v2/pkg/generated/protobuf"
	rekornote "github.com/sigstore/rekor-tiles/v2/pkg/note"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/encoding/protojson"
)

// rekorV2Origin is the test log's checkpoint origin: its trusted root's
// baseUrl host, as sigstore-go requires of a Rekor v2 log.
const rekorV2Origin = "rekor.example.test"

// TestRekorV2Bundle: key-signed Sigstore bundles whose log entry is a Rekor
// v2 one (the tile-based log: a dsse v0.0.2 entry with an inclusion proof
// under a signed checkpoint, no inclusion promise, no integrated time),
// verified by sigstore-go through cosign.VerifyNewBundle with the log
// required. The attacks change one part of an otherwise valid entry.
func TestRekorV2Bundle(t *testing.T) {
	logKey, otherLog := at.ECKey(t, elliptic.P256()), at.ECKey(t, elliptic.P256())
	signer := at.ECKey(t, elliptic.P256())
	cases := []struct {
		name   string
		entry  rekorV2Entry
		want   attestation.Outcome
		reason string
	}{
		{"valid entry", rekorV2Entry{}, attestation.Verified, ""},
		{"checkpoint signed by another log", rekorV2Entry{checkpointKey: otherLog}, attestation.NotVerified, "checkpoint"},
		{"checkpoint of another origin", rekorV2Entry{origin: "rekor.evil.test"}, attestation.NotVerified, "checkpoint"},
		{"inclusion proof for another tree", rekorV2Entry{otherRoot: true}, attestation.NotVerified, "inclusion"},
		{"entry logs another signature", rekorV2Entry{otherSig: true}, attestation.NotVerified, "signature does not match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := at.NewRegistry(t)
			_, d := reg.Push(t, "app", "v1")
			st := at.Statement(d, at.SignPredicateType)
			c.entry.logKey = logKey
			reg.AttachBundle(t, "app", d, c.entry.bundle(t, signer, st))
			a := at.KeyAttestor(t, "ci", signer)
			a.Spec.TransparencyLog = policy.ModeRequired
			a.Spec.TrustedRoot = rekorV2Root(t, logKey)
			r := newVerifier(t).Verify(context.Background(), workload.ParseImage(reg.Host+"/app@"+d), []*policy.Attestor{a})
			got := r.Attestors[0]
			if got.Outcome != c.want || !strings.Contains(got.Reason, c.reason) {
				t.Errorf("got %v %q, want %v containing %q", got.Outcome, got.Reason, c.want, c.reason)
			}
		})
	}
}

// rekorV2Entry builds a bundle with a Rekor v2 log entry; the zero value
// (with logKey) is a valid one.
type rekorV2Entry struct {
	logKey        *ecdsa.PrivateKey
	checkpointKey *ecdsa.PrivateKey // signs the checkpoint instead of logKey
	origin        string            // instead of rekorV2Origin
	otherRoot     bool              // the checkpoint commits to another tree
	otherSig      bool              // the entry records a signature other than the bundle's
}

func (e rekorV2Entry) bundle(t *testing.T, key *ecdsa.PrivateKey, statement []byte) []byte {
	probe := at.Bundle(t, key, statement, nil)
	var b map[string]any
	if err := json.Unmarshal(probe, &b); err != nil {
		t.Fatal(err)
	}
	env := b["dsseEnvelope"].(map[string]any)
	sig, _ := base64.StdEncoding.DecodeString(env["signatures"].([]any)[0].(map[string]any)["sig"].(string))
	if e.otherSig {
		sig = append([]byte(nil), sig...)
		sig[len(sig)-1] ^= 1
	}
	body := e.body(t, key, statement, sig)
	leaf := rfc6962.DefaultHasher.HashLeaf(body)
	rootHash := leaf // a tree of one entry
	if e.otherRoot {
		rootHash = rfc6962.DefaultHasher.HashLeaf([]byte("another entry"))
	}
	b["verificationMaterial"].(map[string]any)["tlogEntries"] = []any{map[string]any{
		"logIndex": "0", "logId": map[string]any{"keyId": rawLogID(t, e.logKey)},
		"kindVersion": map[string]string{"kind": "dsse", "version": "0.0.2"},
		"inclusionProof": map[string]any{"logIndex": "0", "treeSize": "1", "rootHash": rootHash, "hashes": []any{},
			"checkpoint": map[string]string{"envelope": e.checkpoint(t, rootHash)}},
		"canonicalizedBody": body,
	}}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// body is the entry as the log stores it: a dsse v0.0.2 entry naming the
// payload's hash, the signature and the signer's key.
func (e rekorV2Entry) body(t *testing.T, key *ecdsa.PrivateKey, statement, sig []byte) []byte {
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(statement)
	entry := &rekorpb.Entry{Kind: "dsse", ApiVersion: "0.0.2", Spec: &rekorpb.Spec{Spec: &rekorpb.Spec_DsseV002{DsseV002: &rekorpb.DSSELogEntryV002{
		PayloadHash: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
		Signatures: []*rekorpb.Signature{{Content: sig, Verifier: &rekorpb.Verifier{
			Verifier:   &rekorpb.Verifier_PublicKey{PublicKey: &rekorpb.PublicKey{RawBytes: der}},
			KeyDetails: protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256,
		}}},
	}}}}
	b, err := protojson.Marshal(entry)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkpoint is the log's signed note committing to a tree of one entry.
func (e rekorV2Entry) checkpoint(t *testing.T, rootHash []byte) string {
	origin, key := rekorV2Origin, e.logKey
	if e.origin != "" {
		origin = e.origin
	}
	if e.checkpointKey != nil {
		key = e.checkpointKey
	}
	sv, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := rekornote.NewNoteSigner(context.Background(), origin, sv)
	if err != nil {
		t.Fatal(err)
	}
	text := log.Checkpoint{Origin: origin, Size: 1, Hash: rootHash}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(text)}, ns)
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// rekorV2Root is a trusted root holding only the test Rekor v2 log.
func rekorV2Root(t *testing.T, logKey *ecdsa.PrivateKey) string {
	id := rawLogID(t, logKey)
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, nil, nil, nil, map[string]*root.TransparencyLog{
		hex.EncodeToString(id): {BaseURL: "https://" + rekorV2Origin, ID: id, PublicKey: logKey.Public(),
			HashFunc: crypto.SHA256, SignatureHashFunc: crypto.SHA256, ValidityPeriodStart: time.Now().Add(-time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func rawLogID(t *testing.T, key crypto.Signer) []byte {
	id, err := hex.DecodeString(logID(t, key))
	if err != nil {
		t.Fatal(err)
	}
	return id
}
