package sigstoretest

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// Signed is one signature over a payload and what vouches for it; cases
// change its fields before turning it into a LegacySig or a Bundle.
type Signed struct {
	Payload, Sig []byte
	Key          crypto.Signer
	// Cert and Chain (intermediates, then the root) for keyless signatures.
	Cert  *x509.Certificate
	Chain []*x509.Certificate
	Entry *Entry
	TSR   []byte
}

// SignWithKey signs payload with key over hash.
func SignWithKey(key crypto.Signer, hash crypto.Hash, payload []byte) (*Signed, error) {
	sig, err := Sign(key, hash, payload)
	if err != nil {
		return nil, err
	}
	return &Signed{Payload: payload, Sig: sig, Key: key}, nil
}

// SignKeyless issues l from p and signs payload with its key, as cosign
// sign does with a Fulcio certificate.
func (p *PKI) SignKeyless(l Leaf, payload []byte) (*Signed, error) {
	cert, key, err := p.Issue(l)
	if err != nil {
		return nil, err
	}
	s, err := SignWithKey(key, crypto.SHA256, payload)
	if err != nil {
		return nil, err
	}
	s.Cert, s.Chain = cert, []*x509.Certificate{p.Intermediate, p.Root}
	return s, nil
}

// Verifier is the PEM Rekor records for s: its certificate, or its public key.
func (s *Signed) Verifier() []byte {
	if s.Cert != nil {
		return PEM(s.Cert)
	}
	return PublicKeyPEM(s.Key.Public())
}

// LogHashedRekord has log admit s as a hashedrekord entry at t.
func (s *Signed) LogHashedRekord(log *PKI, t time.Time) error {
	h := sha256.Sum256(s.Payload)
	body, err := HashedRekordBody(h[:], s.Sig, s.Verifier())
	if err != nil {
		return err
	}
	s.Entry, err = log.Log("hashedrekord", "0.0.1", body, t.Unix())
	return err
}

// Legacy is s as a layer of cosign's signature image.
func (s *Signed) Legacy() (LegacySig, error) {
	l := LegacySig{Payload: s.Payload, Signature: b64(s.Sig), Timestamp: s.TSR}
	if s.Cert != nil {
		l.Cert, l.Chain = PEM(s.Cert), PEM(s.Chain...)
	}
	if s.Entry != nil {
		var err error
		if l.Bundle, err = s.Entry.LegacyBundle(); err != nil {
			return l, err
		}
	}
	return l, nil
}

// SignedEnvelope is a DSSE envelope signed by Key (and Cert, if keyless).
type SignedEnvelope struct {
	Env  *dsse.Envelope
	Key  crypto.Signer
	Cert *x509.Certificate
}

// EnvelopeJSON is the envelope as Rekor's dsse type reads it.
func (e *SignedEnvelope) EnvelopeJSON() []byte {
	b, err := json.Marshal(e.Env)
	if err != nil {
		panic(err)
	}
	return b
}

// LogDSSE has log admit the envelope as a dsse entry at t, with an
// inclusion proof (bundles v0.2 and later require one).
func (e *SignedEnvelope) LogDSSE(log *PKI, t time.Time) (*Entry, error) {
	pemBytes := PublicKeyPEM(e.Key.Public())
	if e.Cert != nil {
		pemBytes = PEM(e.Cert)
	}
	body, err := DSSEBody(e.EnvelopeJSON(), pemBytes)
	if err != nil {
		return nil, err
	}
	entry, err := log.Log("dsse", "0.0.1", body, t.Unix())
	if err != nil {
		return nil, err
	}
	return entry, log.Prove(entry, nil)
}

// Bundle is the envelope in a bundle with entries.
func (e *SignedEnvelope) Bundle(entries ...*Entry) Bundle {
	return Bundle{Envelope: e.Env, Cert: e.Cert, KeyHint: "", Entries: entries}
}
