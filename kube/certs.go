package kube

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var (
	webhookGVR         = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}
	mutatingWebhookGVR = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}
)

// CertBootstrap gives imagegate a serving certificate without cert-manager:
// a self-signed CA and a serving certificate kept in one Secret (shared by
// every replica), written to the files the TLS server reloads, with the CA
// patched into the webhook configuration's caBundle, and a new serving
// certificate issued before the old one expires.
type CertBootstrap struct {
	Client            dynamic.Interface
	Namespace, Secret string
	// Webhook names the ValidatingWebhookConfiguration whose webhooks get
	// the CA as caBundle.
	Webhook string
	// MutatingWebhook names the MutatingWebhookConfiguration (digest
	// pinning) whose webhooks get it too; empty: none.
	MutatingWebhook string
	// Hosts are the serving certificate's DNS names and IP addresses.
	Hosts             []string
	CertFile, KeyFile string
	// Validity of a serving certificate, and how long before its end a new
	// one is issued.
	Validity, RenewBefore time.Duration
	Log                   *slog.Logger
	now                   func() time.Time
}

// Secret keys.
const (
	keyCACert  = "ca.crt"
	keyCAKey   = "ca.key"
	keyTLSCert = "tls.crt"
	keyTLSKey  = "tls.key"
)

// caValidity is the CA's lifetime; it is replaced within RenewBefore of its
// end like the serving certificate, and both CAs are trusted meanwhile.
const caValidity = 10 * 365 * 24 * time.Hour

// Ensure makes sure the Secret holds a CA and a serving certificate valid
// for more than RenewBefore, writes the serving pair to CertFile and
// KeyFile and patches the caBundle. Replicas racing each other converge on
// whichever Secret version was written first.
func (b *CertBootstrap) Ensure(ctx context.Context) error {
	if b.now == nil {
		b.now = time.Now
	}
	secrets := b.Client.Resource(secretsGVR).Namespace(b.Namespace)
	for attempt := 0; attempt < 5; attempt++ {
		sec, err := secrets.Get(ctx, b.Secret, metav1.GetOptions{})
		create := apierrors.IsNotFound(err)
		if err != nil && !create {
			return fmt.Errorf("certificate Secret %s/%s: %w", b.Namespace, b.Secret, err)
		}
		data := map[string][]byte{}
		if !create {
			data = secretData(sec)
		}
		changed, err := b.fill(data)
		if err != nil {
			return err
		}
		if changed {
			enc := map[string]any{}
			for k, v := range data {
				enc[k] = base64.StdEncoding.EncodeToString(v)
			}
			if create {
				sec = &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
					"metadata": map[string]any{"name": b.Secret, "namespace": b.Namespace,
						"labels": map[string]any{"app.kubernetes.io/name": "imagegate"}},
					"data": enc,
				}}
				_, err = secrets.Create(ctx, sec, metav1.CreateOptions{FieldManager: "imagegate"})
			} else {
				_ = unstructured.SetNestedMap(sec.Object, enc, "data")
				_, err = secrets.Update(ctx, sec, metav1.UpdateOptions{FieldManager: "imagegate"})
			}
			if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
				continue // another replica wrote first: use its version
			}
			if err != nil {
				return fmt.Errorf("certificate Secret %s/%s: %w", b.Namespace, b.Secret, err)
			}
			b.Log.Info("serving certificate issued", "secret", b.Namespace+"/"+b.Secret, "hosts", b.Hosts)
		}
		if err := b.writeFiles(data); err != nil {
			return err
		}
		return b.patchCABundle(ctx, data[keyCACert])
	}
	return fmt.Errorf("certificate Secret %s/%s: too many concurrent changes", b.Namespace, b.Secret)
}

// Run calls Ensure every interval until ctx ends, so a certificate nearing
// its end is replaced and a caBundle someone reset is patched again.
func (b *CertBootstrap) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := b.Ensure(ctx); err != nil && ctx.Err() == nil {
				b.Log.Warn("serving certificate not checked", "error", err.Error())
			}
		}
	}
}

func secretData(sec *unstructured.Unstructured) map[string][]byte {
	out := map[string][]byte{}
	m, _, _ := unstructured.NestedStringMap(sec.Object, "data")
	for k, v := range m {
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			out[k] = b
		}
	}
	return out
}

// fill issues what data lacks or what is due, reporting whether it changed.
func (b *CertBootstrap) fill(data map[string][]byte) (bool, error) {
	now := b.now()
	ca, caKey, err := parsePair(data[keyCACert], data[keyCAKey])
	changed := false
	if err != nil || !ca.IsCA || now.After(ca.NotAfter.Add(-b.RenewBefore)) {
		previous := data[keyCACert]
		ca, caKey, err = b.issue(nil, nil, caValidity)
		if err != nil {
			return false, err
		}
		data[keyCACert], data[keyCAKey] = encodePair(ca, caKey)
		// Replicas that have not yet seen the new Secret still serve
		// certificates of the old CA until their next check: the caBundle
		// trusts both while the old one is valid. The new CA comes first,
		// the one parsePair reads.
		data[keyCACert] = append(data[keyCACert], validCAs(previous, now)...)
		delete(data, keyTLSCert)
		changed = true
	}
	cert, _, err := parsePair(data[keyTLSCert], data[keyTLSKey])
	if err == nil && cert.CheckSignatureFrom(ca) == nil && now.Before(cert.NotAfter.Add(-b.RenewBefore)) && b.coversHosts(cert) {
		return changed, nil
	}
	cert, key, err := b.issue(ca, caKey, b.Validity)
	if err != nil {
		return false, err
	}
	data[keyTLSCert], data[keyTLSKey] = encodePair(cert, key)
	return true, nil
}

func (b *CertBootstrap) coversHosts(c *x509.Certificate) bool {
	for _, h := range b.Hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// issue makes a CA (parent nil) or a serving certificate signed by parent.
func (b *CertBootstrap) issue(parent *x509.Certificate, parentKey *ecdsa.PrivateKey, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := b.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, NotBefore: now.Add(-5 * time.Minute), NotAfter: now.Add(validity),
		BasicConstraintsValid: true,
	}
	signer, signerKey := parent, parentKey
	if parent == nil {
		tmpl.Subject = pkix.Name{CommonName: "imagegate-ca"}
		tmpl.IsCA = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		signer, signerKey = tmpl, key
	} else {
		tmpl.Subject = pkix.Name{CommonName: "imagegate"}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range b.Hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func encodePair(c *x509.Certificate, k *ecdsa.PrivateKey) ([]byte, []byte) {
	der, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("missing certificate or key")
	}
	c, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := parseECKey(kb)
	if err != nil {
		return nil, nil, err
	}
	// A pair edited by hand may not belong together; the TLS server could
	// not load it, and a CA's certificates would not verify.
	if !k.PublicKey.Equal(c.PublicKey) {
		return nil, nil, errors.New("the key does not match the certificate")
	}
	return c, k, nil
}

// parseECKey reads an EC key in SEC 1 form (what the bootstrap writes) or
// PKCS #8 (what openssl genpkey and most tools write), so a CA put into the
// Secret by hand is kept rather than replaced.
func parseECKey(b *pem.Block) (*ecdsa.PrivateKey, error) {
	if b.Type != "PRIVATE KEY" {
		return x509.ParseECPrivateKey(b.Bytes)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T key; the bootstrap signs with ECDSA keys only", k)
	}
	return ek, nil
}

// validCAs is the PEM of the CA certificates in bundle still valid at now.
func validCAs(bundle []byte, now time.Time) []byte {
	var out []byte
	for {
		var blk *pem.Block
		blk, bundle = pem.Decode(bundle)
		if blk == nil {
			return out
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err == nil && c.IsCA && now.Before(c.NotAfter) {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
	}
}

// writeFiles replaces the serving pair on disk when it changed: key first,
// each by rename, so the reloader never reads a half-written file.
func (b *CertBootstrap) writeFiles(data map[string][]byte) error {
	for _, f := range []struct {
		path string
		data []byte
	}{{b.KeyFile, data[keyTLSKey]}, {b.CertFile, data[keyTLSCert]}} {
		if old, err := os.ReadFile(f.path); err == nil && bytes.Equal(old, f.data) {
			continue
		}
		tmp, err := os.CreateTemp(filepath.Dir(f.path), ".imagegate-tls-*")
		if err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
		_, werr := tmp.Write(f.data)
		cerr := tmp.Close()
		if err := errors.Join(werr, cerr); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("write %s: %w", f.path, err)
		}
		if err := os.Rename(tmp.Name(), f.path); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return nil
}

// patchCABundle sets caBundle on every webhook of the configurations.
func (b *CertBootstrap) patchCABundle(ctx context.Context, ca []byte) error {
	if err := b.patchConfiguration(ctx, webhookGVR, "ValidatingWebhookConfiguration", b.Webhook, ca); err != nil {
		return err
	}
	return b.patchConfiguration(ctx, mutatingWebhookGVR, "MutatingWebhookConfiguration", b.MutatingWebhook, ca)
}

// patchConfiguration sets caBundle on every webhook of one configuration
// (validating and mutating ones have the same shape there).
func (b *CertBootstrap) patchConfiguration(ctx context.Context, gvr schema.GroupVersionResource, kind, name string, ca []byte) error {
	if name == "" {
		return nil
	}
	want := base64.StdEncoding.EncodeToString(ca)
	for attempt := 0; attempt < 5; attempt++ {
		vwc, err := b.Client.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			b.Log.Warn("webhook configuration not found; caBundle not patched", "kind", kind, "name", name)
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, name, err)
		}
		whs, _, _ := unstructured.NestedSlice(vwc.Object, "webhooks")
		changed := false
		for _, w := range whs {
			m, ok := w.(map[string]any)
			if !ok {
				continue
			}
			cc, _ := m["clientConfig"].(map[string]any)
			if cc == nil {
				cc = map[string]any{}
				m["clientConfig"] = cc
			}
			if cc["caBundle"] != want {
				cc["caBundle"] = want
				changed = true
			}
		}
		if !changed {
			return nil
		}
		_ = unstructured.SetNestedSlice(vwc.Object, whs, "webhooks")
		_, err = b.Client.Resource(gvr).Update(ctx, vwc, metav1.UpdateOptions{FieldManager: "imagegate"})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s: patch caBundle: %w", kind, name, err)
		}
		b.Log.Info("caBundle patched", "kind", kind, "name", name)
		return nil
	}
	return fmt.Errorf("%s %s: too many concurrent changes", kind, name)
}
