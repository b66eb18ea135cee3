package sigstoretest

import (
	"crypto/x509"
	"encoding/base64"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Bundle says what goes into a Sigstore bundle (v0.3 unless MediaType says
// otherwise). Exactly one of Envelope and MessageDigest is the content;
// Cert or else KeyHint is the verification material.
type Bundle struct {
	MediaType string
	Envelope  *dsse.Envelope
	// MessageDigest (SHA-256) and MessageSig make a messageSignature bundle.
	MessageDigest, MessageSig []byte
	Cert                      *x509.Certificate
	KeyHint                   string
	Entries                   []*Entry
	Timestamps                [][]byte
}

// JSON is the bundle in its protobuf JSON form, as cosign stores it.
func (b Bundle) JSON() ([]byte, error) {
	pb := &protobundle.Bundle{MediaType: b.MediaType, VerificationMaterial: &protobundle.VerificationMaterial{}}
	if pb.MediaType == "" {
		pb.MediaType = BundleMediaType
	}
	if b.Cert != nil {
		pb.VerificationMaterial.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: b.Cert.Raw}}
	} else {
		pb.VerificationMaterial.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: b.KeyHint}}
	}
	for _, e := range b.Entries {
		tle := &protorekor.TransparencyLogEntry{
			LogIndex:          e.LogIndex,
			LogId:             &protocommon.LogId{KeyId: e.LogID},
			KindVersion:       &protorekor.KindVersion{Kind: e.Kind, Version: e.Version},
			IntegratedTime:    e.IntegratedTime,
			CanonicalizedBody: e.Body,
		}
		if e.SET != nil {
			tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: e.SET}
		}
		if p := e.Proof; p != nil {
			tle.InclusionProof = &protorekor.InclusionProof{LogIndex: p.LogIndex, RootHash: p.RootHash, TreeSize: p.TreeSize,
				Hashes: p.Hashes, Checkpoint: &protorekor.Checkpoint{Envelope: p.Checkpoint}}
		}
		pb.VerificationMaterial.TlogEntries = append(pb.VerificationMaterial.TlogEntries, tle)
	}
	if len(b.Timestamps) > 0 {
		tvd := &protobundle.TimestampVerificationData{}
		for _, ts := range b.Timestamps {
			tvd.Rfc3161Timestamps = append(tvd.Rfc3161Timestamps, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts})
		}
		pb.VerificationMaterial.TimestampVerificationData = tvd
	}
	if b.Envelope != nil {
		env := &protodsse.Envelope{PayloadType: b.Envelope.PayloadType}
		var err error
		if env.Payload, err = base64.StdEncoding.DecodeString(b.Envelope.Payload); err != nil {
			return nil, err
		}
		for _, s := range b.Envelope.Signatures {
			sig, err := base64.StdEncoding.DecodeString(s.Sig)
			if err != nil {
				return nil, err
			}
			env.Signatures = append(env.Signatures, &protodsse.Signature{Sig: sig, Keyid: s.KeyID})
		}
		pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: env}
	} else {
		pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: b.MessageDigest},
			Signature:     b.MessageSig}}
	}
	return protojson.Marshal(pb)
}
