package harness

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority for the test's components, written to Dir.
type CA struct {
	Dir      string
	CertFile string // PEM certificate
	KeyFile  string // PEM private key
	CertPEM  []byte

	cert *x509.Certificate
	key  crypto.Signer
}

// KeyPair is a certificate and its key, as PEM files.
type KeyPair struct {
	CertFile, KeyFile string
	CertPEM, KeyPEM   []byte
}

// NewCA makes a CA named name in a new directory under the test's temp dir.
func NewCA(t TB, name string) *CA {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("CA dir: %v", err)
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name + " CA", Organization: []string{"imagegate e2e"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("CA certificate: %v", err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{Dir: dir, cert: cert, key: key}
	kp := ca.write(t, "ca", der, key)
	ca.CertFile, ca.KeyFile, ca.CertPEM = kp.CertFile, kp.KeyFile, kp.CertPEM
	return ca
}

// ServingCert issues a server certificate for 127.0.0.1 and localhost (and
// any extra IPs and DNS names).
func (ca *CA) ServingCert(t TB, name string, ips []net.IP, dnsNames ...string) *KeyPair {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  append([]net.IP{net.ParseIP("127.0.0.1")}, ips...),
		DNSNames:     append([]string{"localhost"}, dnsNames...),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatalf("serving certificate %s: %v", name, err)
	}
	return ca.write(t, name, der, key)
}

// ClientCert issues a client certificate: Kubernetes reads the user name
// from the common name and the groups from the organizations.
func (ca *CA) ClientCert(t TB, name, user string, groups ...string) *KeyPair {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: user, Organization: groups},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatalf("client certificate %s: %v", name, err)
	}
	return ca.write(t, name, der, key)
}

// write stores der and key as <name>.crt and <name>.key in the CA's dir.
func (ca *CA) write(t TB, name string, der []byte, key crypto.Signer) *KeyPair {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	kp := &KeyPair{
		CertFile: filepath.Join(ca.Dir, name+".crt"),
		KeyFile:  filepath.Join(ca.Dir, name+".key"),
		CertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	if err := os.WriteFile(kp.CertFile, kp.CertPEM, 0o644); err != nil {
		t.Fatalf("write %s: %v", kp.CertFile, err)
	}
	if err := os.WriteFile(kp.KeyFile, kp.KeyPEM, 0o600); err != nil {
		t.Fatalf("write %s: %v", kp.KeyFile, err)
	}
	return kp
}

// WriteKeyPair makes a bare key pair (no certificate): PKCS#8 private key
// and PKIX public key, as the API server's service-account flags want.
func WriteKeyPair(t TB, dir, name string) (privFile, pubFile string) {
	t.Helper()
	key := newKey(t)
	privDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	privFile, pubFile = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(privFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		t.Fatalf("write %s: %v", privFile, err)
	}
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatalf("write %s: %v", pubFile, err)
	}
	return privFile, pubFile
}

func newKey(t TB) crypto.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

func serial(t TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		t.Fatalf("serial: %v", err)
	}
	return n
}
