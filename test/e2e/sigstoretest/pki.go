// Package sigstoretest crafts Sigstore trust material and signatures for
// differential tests against the cosign CLI: a Fulcio-like certificate
// authority, a Rekor log key (signed entry timestamps, inclusion proofs), a
// Certificate Transparency log (SCTs embedded through the precertificate
// flow), an RFC 3161 timestamp authority, and the trusted_root.json naming
// them. Everything is built with the libraries cosign and sigstore-go use,
// so that what the tests craft is what a real deployment would produce —
// except where a case deliberately breaks one property.
package sigstoretest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// PKI is one test Sigstore instance. Two instances made by New share
// nothing, so one is "trusted" and another "unknown" to a trusted root.
type PKI struct {
	Name string
	// Epoch is the start of every validity window (five hours ago): old
	// enough for expired certificates with in-window timestamps.
	Epoch time.Time

	Root, Intermediate *x509.Certificate
	rootKey, interKey  *ecdsa.PrivateKey

	RekorKey *ecdsa.PrivateKey
	CTKey    *ecdsa.PrivateKey

	TSARoot, TSALeaf *x509.Certificate
	tsaKey           *ecdsa.PrivateKey
}

func newKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return k
}

// New makes a PKI named name (it appears in the certificates' subjects).
func New(name string) (*PKI, error) {
	p := &PKI{Name: name, Epoch: time.Now().Add(-5 * time.Hour).Truncate(time.Second)}
	end := time.Now().Add(24 * time.Hour)
	p.rootKey, p.interKey = newKey(), newKey()
	var err error
	p.Root, err = createCert(&x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + "-root", Organization: []string{name}},
		NotBefore: p.Epoch, NotAfter: end, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, &p.rootKey.PublicKey, p.rootKey)
	if err != nil {
		return nil, err
	}
	p.Intermediate, err = createCert(&x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name + "-intermediate", Organization: []string{name}},
		NotBefore: p.Epoch, NotAfter: end, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, p.Root, &p.interKey.PublicKey, p.rootKey)
	if err != nil {
		return nil, err
	}
	p.RekorKey, p.CTKey = newKey(), newKey()

	tsaRootKey := newKey()
	p.tsaKey = newKey()
	p.TSARoot, err = createCert(&x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: name + "-tsa-root", Organization: []string{name}},
		NotBefore: p.Epoch, NotAfter: end, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, &tsaRootKey.PublicKey, tsaRootKey)
	if err != nil {
		return nil, err
	}
	// RFC 3161 requires the timestamping EKU, alone and critical.
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	if err != nil {
		return nil, err
	}
	p.TSALeaf, err = createCert(&x509.Certificate{
		SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: name + "-tsa", Organization: []string{name}},
		NotBefore: p.Epoch, NotAfter: end, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}, p.TSARoot, &p.tsaKey.PublicKey, tsaRootKey)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// MustNew is New for test set-up.
func MustNew(name string) *PKI {
	p, err := New(name)
	if err != nil {
		panic(fmt.Sprintf("sigstoretest.New(%q): %v", name, err))
	}
	return p
}

func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// LogID is the transparency-log identifier of a key: the SHA-256 of its
// PKIX encoding, as Rekor and CT logs compute it.
func LogID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	h := sha256.Sum256(der)
	return h[:]
}

// Window is a validity period in a trusted root; a zero End is open.
type Window struct{ Start, End time.Time }

// Trust says which parts of which PKIs a trusted root names.
type Trust struct {
	Fulcio []*PKI
	// FulcioRootOnly lists the certificate authorities without their
	// intermediate, so a leaf issued by it cannot chain from the root alone.
	FulcioRootOnly bool
	Rekor          []*PKI
	// RekorWindow, when set, replaces the Rekor keys' validity period.
	RekorWindow *Window
	CT          []*PKI
	TSA         []*PKI
}

// TrustedRoot builds the sigstore-go trusted root t describes.
func (t Trust) TrustedRoot() (*root.TrustedRoot, error) {
	var cas []root.CertificateAuthority
	for _, p := range t.Fulcio {
		ca := &root.FulcioCertificateAuthority{Root: p.Root, ValidityPeriodStart: p.Epoch, URI: "https://fulcio." + p.Name + ".test"}
		if !t.FulcioRootOnly {
			ca.Intermediates = []*x509.Certificate{p.Intermediate}
		}
		cas = append(cas, ca)
	}
	logs := func(ps []*PKI, key func(*PKI) *ecdsa.PrivateKey, w *Window, kind string) map[string]*root.TransparencyLog {
		m := map[string]*root.TransparencyLog{}
		for _, p := range ps {
			id := LogID(key(p).Public())
			l := &root.TransparencyLog{BaseURL: "https://" + kind + "." + p.Name + ".test", ID: id,
				ValidityPeriodStart: p.Epoch, HashFunc: crypto.SHA256, PublicKey: key(p).Public(), SignatureHashFunc: crypto.SHA256}
			if w != nil {
				l.ValidityPeriodStart, l.ValidityPeriodEnd = w.Start, w.End
			}
			m[fmt.Sprintf("%x", id)] = l
		}
		return m
	}
	var tsas []root.TimestampingAuthority
	for _, p := range t.TSA {
		tsas = append(tsas, &root.SigstoreTimestampingAuthority{Root: p.TSARoot, Leaf: p.TSALeaf,
			ValidityPeriodStart: p.Epoch, URI: "https://tsa." + p.Name + ".test"})
	}
	return root.NewTrustedRoot(root.TrustedRootMediaType01, cas,
		logs(t.CT, func(p *PKI) *ecdsa.PrivateKey { return p.CTKey }, nil, "ctfe"),
		tsas,
		logs(t.Rekor, func(p *PKI) *ecdsa.PrivateKey { return p.RekorKey }, t.RekorWindow, "rekor"))
}

// JSON is the trusted_root.json of t.
func (t Trust) JSON() ([]byte, error) {
	tr, err := t.TrustedRoot()
	if err != nil {
		return nil, err
	}
	return tr.MarshalJSON()
}
