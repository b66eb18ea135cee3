package sigstoretest

import (
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// TestCraftedMaterialVerifies: what the package crafts verifies with
// sigstore-go against the trusted root it writes (after a JSON round trip),
// so a differential case fails for the property it breaks, not by accident.
func TestCraftedMaterialVerifies(t *testing.T) {
	p := MustNew("test")
	js, err := Trust{Fulcio: []*PKI{p}, Rekor: []*PKI{p}, CT: []*PKI{p}, TSA: []*PKI{p}}.JSON()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRootFromJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := p.Issue(Leaf{Email: "dev@example.com", Issuer: "https://issuer.example.com", SCTBy: p})
	if err != nil {
		t.Fatal(err)
	}
	chains, err := verify.VerifyLeafCertificate(cert.NotBefore, cert, tr)
	if err != nil {
		t.Fatalf("chain: %v", err)
	}
	if err := verify.VerifySignedCertificateTimestamp(chains, 1, tr); err != nil {
		t.Fatalf("SCT: %v", err)
	}
	payload := SimpleSigning("r/x", "sha256:00", SimpleSigningType)
	sig, err := Sign(key, crypto.SHA256, payload)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(payload)
	body, err := HashedRekordBody(h[:], sig, PEM(cert))
	if err != nil {
		t.Fatal(err)
	}
	e, err := p.Log("hashedrekord", "0.0.1", body, time.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	te, err := tlog.NewEntry(body, e.IntegratedTime, e.LogIndex, e.LogID, e.SET, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.VerifySET(te, tr.RekorLogs()); err != nil {
		t.Fatalf("SET: %v (log %s)", err, hex.EncodeToString(e.LogID))
	}
	if _, err := p.Timestamp(sig, time.Now()); err != nil {
		t.Fatal(err)
	}
}
