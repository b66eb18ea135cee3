package kube

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"testing"
	"time"
)

func TestCertBootstrapFill(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	b := &CertBootstrap{Hosts: []string{"imagegate.imagegate.svc", "127.0.0.1"}, Validity: 90 * 24 * time.Hour,
		RenewBefore: 10 * 24 * time.Hour, Log: slog.New(slog.DiscardHandler), now: func() time.Time { return now }}
	data := map[string][]byte{}
	if changed, err := b.fill(data); err != nil || !changed {
		t.Fatalf("empty Secret: changed %v, error %v; want a new CA and certificate", changed, err)
	}
	ca, _, err := parsePair(data[keyCACert], data[keyCAKey])
	if err != nil || !ca.IsCA {
		t.Fatalf("CA: %v", err)
	}
	cert, _, err := parsePair(data[keyTLSCert], data[keyTLSKey])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, h := range b.Hosts {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: h, Roots: pool, CurrentTime: now}); err != nil {
			t.Errorf("certificate for %s: %v", h, err)
		}
	}
	first := append([]byte(nil), data[keyTLSCert]...)

	tests := []struct {
		name      string
		at        time.Time
		hosts     []string
		wantNew   bool
		wantSame  bool // CA kept
		wantValid time.Time
	}{
		{"still valid: kept", now.Add(30 * 24 * time.Hour), b.Hosts, false, true, time.Time{}},
		{"within renewBefore: renewed", now.Add(85 * 24 * time.Hour), b.Hosts, true, true, now.Add(85 * 24 * time.Hour)},
		{"hosts changed: reissued", now.Add(86 * 24 * time.Hour), []string{"imagegate.other.svc"}, true, true, now.Add(86 * 24 * time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now, b.Hosts = tc.at, tc.hosts
			caBefore := append([]byte(nil), data[keyCACert]...)
			before := append([]byte(nil), data[keyTLSCert]...)
			changed, err := b.fill(data)
			if err != nil || changed != tc.wantNew {
				t.Fatalf("changed %v, error %v; want changed %v", changed, err, tc.wantNew)
			}
			if tc.wantNew == bytes.Equal(before, data[keyTLSCert]) {
				t.Fatalf("certificate replaced = %v, want %v", !bytes.Equal(before, data[keyTLSCert]), tc.wantNew)
			}
			if tc.wantSame != bytes.Equal(caBefore, data[keyCACert]) {
				t.Fatalf("CA replaced")
			}
			if tc.wantNew {
				c, _, _ := parsePair(data[keyTLSCert], data[keyTLSKey])
				if _, err := c.Verify(x509.VerifyOptions{DNSName: tc.hosts[0], Roots: pool, CurrentTime: tc.wantValid}); err != nil {
					t.Fatalf("renewed certificate: %v", err)
				}
			}
		})
	}
	if bytes.Equal(first, data[keyTLSCert]) {
		t.Fatal("the certificate never changed")
	}
}

// pairAt issues a CA (parent nil) or a certificate for hosts at the given
// time, as the bootstrap would have then.
func pairAt(t *testing.T, at time.Time, validity time.Duration, hosts []string, parentCert, parentKey []byte) (certPEM, keyPEM []byte) {
	t.Helper()
	b := &CertBootstrap{Hosts: hosts, now: func() time.Time { return at }}
	var pc *x509.Certificate
	var pk *ecdsa.PrivateKey
	if parentCert != nil {
		var err error
		if pc, pk, err = parsePair(parentCert, parentKey); err != nil {
			t.Fatal(err)
		}
	}
	c, k, err := b.issue(pc, pk, validity)
	if err != nil {
		t.Fatal(err)
	}
	return encodePair(c, k)
}

func pemCerts(t *testing.T, bundle []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		if blk, bundle = pem.Decode(bundle); blk == nil {
			return out
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// TestCertBootstrapReplaces: a Secret whose CA or serving certificate
// cannot serve (expired, near its end, for other names, from another CA,
// with a key of another pair, unreadable) is repaired, keeping what is
// still good; a CA replaced before its end stays trusted in the bundle.
func TestCertBootstrapReplaces(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	hosts := []string{"imagegate.imagegate.svc", "10.0.0.7"}
	day := 24 * time.Hour
	goodCA, goodCAKey := pairAt(t, now.Add(-day), caValidity, nil, nil, nil)
	goodCert, goodKey := pairAt(t, now.Add(-day), 90*day, hosts, goodCA, goodCAKey)
	otherCA, otherCAKey := pairAt(t, now.Add(-day), caValidity, nil, nil, nil)
	oldCA, oldCAKey := pairAt(t, now.Add(-caValidity-day), caValidity, nil, nil, nil)
	endingCA, endingCAKey := pairAt(t, now.Add(-caValidity+5*day), caValidity, nil, nil, nil) // 5 days left
	endingCert, endingKey := pairAt(t, now.Add(-day), 90*day, hosts, endingCA, endingCAKey)
	fromOther, fromOtherKey := pairAt(t, now.Add(-day), 90*day, hosts, otherCA, otherCAKey)
	otherNames, otherNamesKey := pairAt(t, now.Add(-day), 90*day, []string{"imagegate.old.svc"}, goodCA, goodCAKey)
	expired, expiredKey := pairAt(t, now.Add(-100*day), 90*day, hosts, goodCA, goodCAKey)
	_, strayKey := pairAt(t, now.Add(-day), 90*day, hosts, goodCA, goodCAKey)
	pkcs8 := func(keyPEM []byte) []byte {
		blk, _ := pem.Decode(keyPEM)
		k, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER})

	tests := []struct {
		name       string
		data       map[string][]byte
		wantNewCA  bool
		wantBundle int // CA certificates in ca.crt afterwards
		wantNew    bool
	}{
		{"all good: kept", map[string][]byte{keyCACert: goodCA, keyCAKey: goodCAKey, keyTLSCert: goodCert, keyTLSKey: goodKey}, false, 1, false},
		{"CA expired: both replaced, old CA dropped", map[string][]byte{keyCACert: oldCA, keyCAKey: oldCAKey, keyTLSCert: goodCert, keyTLSKey: goodKey}, true, 1, true},
		{"CA near its end: both replaced, old CA still trusted", map[string][]byte{keyCACert: endingCA, keyCAKey: endingCAKey, keyTLSCert: endingCert, keyTLSKey: endingKey}, true, 2, true},
		{"CA key of another CA: both replaced", map[string][]byte{keyCACert: goodCA, keyCAKey: otherCAKey, keyTLSCert: goodCert, keyTLSKey: goodKey}, true, 2, true},
		{"CA unreadable: both replaced", map[string][]byte{keyCACert: []byte("junk"), keyCAKey: goodCAKey, keyTLSCert: goodCert, keyTLSKey: goodKey}, true, 1, true},
		{"serving certificate is a CA's pair: replaced", map[string][]byte{keyCACert: goodCA, keyCAKey: goodCAKey, keyTLSCert: otherCA, keyTLSKey: otherCAKey}, false, 1, true},
		{"certificate from another CA: replaced", map[string][]byte{keyCACert: goodCA, keyCAKey: goodCAKey, keyTLSCert: fromOther, keyTLSKey: fromOtherKey}, false, 1, true},
		{"certificate for other names: replaced", map[string][]byte{keyCACert: goodCA, keyCAKey: goodCAKey, keyTLSCert: otherNames, keyTLSKey: otherNamesKey}, false, 1, true},
		{"certificate expired: replaced", map[string][]byte{keyCACert: goodCA, keyCAKey: goodCAKey, keyTLSCert: expired, keyTLSKey: expiredKey}, false, 1, true},
		{"certificate key of another pair: replaced", map[string][]byte{keyCACert: goodCA, keyCAKey: goodCAKey, keyTLSCert: goodCert, keyTLSKey: strayKey}, false, 1, true},
		{"PKCS #8 keys: kept", map[string][]byte{keyCACert: goodCA, keyCAKey: pkcs8(goodCAKey), keyTLSCert: goodCert, keyTLSKey: pkcs8(goodKey)}, false, 1, false},
		{"CA with an RSA key: both replaced", map[string][]byte{keyCACert: goodCA, keyCAKey: rsaPEM, keyTLSCert: goodCert, keyTLSKey: goodKey}, true, 2, true},
		{"certificate missing: issued", map[string][]byte{keyCACert: goodCA, keyCAKey: goodCAKey}, false, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &CertBootstrap{Hosts: hosts, Validity: 90 * day, RenewBefore: 10 * day, now: func() time.Time { return now }}
			before := map[string][]byte{}
			for k, v := range tc.data {
				before[k] = v
			}
			changed, err := b.fill(tc.data)
			if err != nil || changed != (tc.wantNewCA || tc.wantNew) {
				t.Fatalf("changed %v, error %v; want changed %v", changed, err, tc.wantNewCA || tc.wantNew)
			}
			ca, _, err := parsePair(tc.data[keyCACert], tc.data[keyCAKey])
			if err != nil || !ca.IsCA {
				t.Fatalf("CA after fill: %v", err)
			}
			if newCA := !bytes.Equal(before[keyCACert], tc.data[keyCACert]); newCA != tc.wantNewCA {
				t.Fatalf("CA replaced %v, want %v", newCA, tc.wantNewCA)
			}
			bundle := pemCerts(t, tc.data[keyCACert])
			if len(bundle) != tc.wantBundle || !bundle[0].Equal(ca) {
				t.Fatalf("ca.crt holds %d certificates (first the CA: %v), want %d", len(bundle), len(bundle) > 0 && bundle[0].Equal(ca), tc.wantBundle)
			}
			if replaced := !bytes.Equal(before[keyTLSCert], tc.data[keyTLSCert]) || !bytes.Equal(before[keyTLSKey], tc.data[keyTLSKey]); replaced != tc.wantNew {
				t.Fatalf("serving pair replaced %v, want %v", replaced, tc.wantNew)
			}
			// What the API server does with the caBundle: the serving pair
			// loads and verifies for every host.
			pair, err := tls.X509KeyPair(tc.data[keyTLSCert], tc.data[keyTLSKey])
			if err != nil {
				t.Fatalf("serving pair does not load: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(tc.data[keyCACert]) {
				t.Fatal("caBundle has no certificates")
			}
			for _, h := range hosts {
				if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: pool, CurrentTime: now}); err != nil {
					t.Errorf("serving certificate for %s: %v", h, err)
				}
			}
			if tc.wantBundle == 2 {
				// A replica still serving the old CA's certificate stays trusted.
				old, _ := pem.Decode(before[keyTLSCert])
				oc, _ := x509.ParseCertificate(old.Bytes)
				if _, err := oc.Verify(x509.VerifyOptions{DNSName: hosts[0], Roots: pool, CurrentTime: now}); err != nil {
					t.Errorf("the old CA's certificate is not trusted by the new bundle: %v", err)
				}
			}
		})
	}
}
