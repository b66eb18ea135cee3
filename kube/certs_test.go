package kube

import (
	"bytes"
	"crypto/x509"
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
