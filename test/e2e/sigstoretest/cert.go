package sigstoretest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net/url"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Fulcio's certificate extensions.
var (
	// OIDIssuerV1 holds the OIDC issuer as raw bytes (deprecated by Fulcio).
	OIDIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	// OIDIssuerV2 holds the OIDC issuer as a DER UTF8String.
	OIDIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
	oidPoison   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}
	oidSCTList  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
)

// Leaf says what code-signing certificate to issue.
type Leaf struct {
	// Exactly one subject: an e-mail SAN, a URI SAN or an otherName SAN
	// (Fulcio's username identity, a critical SAN extension).
	Email, URI, OtherName string
	Issuer                string
	// IssuerExt is "v1", "v2" or "" (both, as Fulcio issues them).
	IssuerExt string
	// NotBefore and NotAfter default to a minute ago and ten minutes on.
	NotBefore, NotAfter time.Time
	// SCTBy is the PKI whose CT log key signs the embedded SCT; nil: none.
	SCTBy *PKI
	// ByRoot issues from the root CA instead of the intermediate.
	ByRoot bool
	// Key is the leaf's key; a new P-256 key when nil.
	Key crypto.Signer
}

// Issue makes a leaf certificate for l and returns it with its private key.
func (p *PKI) Issue(l Leaf) (*x509.Certificate, crypto.Signer, error) {
	key := l.Key
	if key == nil {
		key = newKey()
	}
	if l.NotBefore.IsZero() {
		l.NotBefore = time.Now().Add(-time.Minute).Truncate(time.Second)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = l.NotBefore.Add(11 * time.Minute)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, NotBefore: l.NotBefore, NotAfter: l.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	var exts []pkix.Extension
	switch {
	case l.Email != "":
		tmpl.EmailAddresses = []string{l.Email}
	case l.URI != "":
		u, err := url.Parse(l.URI)
		if err != nil {
			return nil, nil, err
		}
		tmpl.URIs = []*url.URL{u}
	case l.OtherName != "":
		san, err := cryptoutils.MarshalOtherNameSAN(l.OtherName, true)
		if err != nil {
			return nil, nil, err
		}
		exts = append(exts, *san)
	}
	if l.IssuerExt != "v2" {
		exts = append(exts, pkix.Extension{Id: OIDIssuerV1, Value: []byte(l.Issuer)})
	}
	if l.IssuerExt != "v1" {
		v, err := asn1.MarshalWithParams(l.Issuer, "utf8")
		if err != nil {
			return nil, nil, err
		}
		exts = append(exts, pkix.Extension{Id: OIDIssuerV2, Value: v})
	}
	parent, parentKey := p.Intermediate, p.interKey
	if l.ByRoot {
		parent, parentKey = p.Root, p.rootKey
	}
	if l.SCTBy == nil {
		tmpl.ExtraExtensions = exts
		c, err := createCert(tmpl, parent, key.Public(), parentKey)
		return c, key, err
	}
	// Precertificate flow (RFC 6962 3.1): the log signs the TBS of a
	// poisoned precertificate; the final certificate carries the SCT in the
	// poison's place, so removing it gives the same TBS back.
	tmpl.ExtraExtensions = append(append([]pkix.Extension{}, exts...),
		pkix.Extension{Id: oidPoison, Critical: true, Value: asn1.NullBytes})
	pre, err := createCert(tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, err
	}
	sctExt, err := l.SCTBy.embeddedSCT(pre, parent)
	if err != nil {
		return nil, nil, err
	}
	tmpl.ExtraExtensions = append(append([]pkix.Extension{}, exts...), sctExt)
	c, err := createCert(tmpl, parent, key.Public(), parentKey)
	return c, key, err
}

// embeddedSCT has p's CT log sign pre and returns the SCT list extension.
func (p *PKI) embeddedSCT(pre, issuer *x509.Certificate) (pkix.Extension, error) {
	tbs, err := ctx509.BuildPrecertTBS(pre.RawTBSCertificate, nil)
	if err != nil {
		return pkix.Extension{}, err
	}
	var logID [32]byte
	copy(logID[:], LogID(p.CTKey.Public()))
	sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: logID},
		Timestamp: uint64(time.Now().UnixMilli())}
	entry := ct.LogEntry{Leaf: ct.MerkleTreeLeaf{Version: ct.V1, LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{Timestamp: sct.Timestamp, EntryType: ct.PrecertLogEntryType,
			PrecertEntry: &ct.PreCert{IssuerKeyHash: sha256.Sum256(issuer.RawSubjectPublicKeyInfo), TBSCertificate: tbs}}}}
	input, err := ct.SerializeSCTSignatureInput(sct, entry)
	if err != nil {
		return pkix.Extension{}, err
	}
	h := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, p.CTKey, h[:])
	if err != nil {
		return pkix.Extension{}, err
	}
	sct.Signature = ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: sig}
	list, err := ctx509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{&sct})
	if err != nil {
		return pkix.Extension{}, err
	}
	raw, err := cttls.Marshal(*list)
	if err != nil {
		return pkix.Extension{}, err
	}
	val, err := asn1.Marshal(raw)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidSCTList, Value: val}, nil
}

// PEM encodes certificates, in order, as PEM.
func PEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// PublicKeyPEM encodes a public key as a PKIX PEM block.
func PublicKeyPEM(pub crypto.PublicKey) []byte {
	b, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		panic(err)
	}
	return b
}
