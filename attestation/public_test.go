package attestation_test

import (
	"context"
	"crypto/elliptic"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// TestPublicSigstoreUnavailable: an attestor trusting the public Sigstore
// instance, with no TUF cache and no way to reach the TUF repository, could
// not verify (it is not a verdict on the image), says why, and does not
// take the request's whole deadline.
func TestPublicSigstoreUnavailable(t *testing.T) {
	reg := at.NewRegistry(t)
	k := at.ECKey(t, elliptic.P256())
	_, d := reg.Push(t, "app", "v1")
	reg.Sign(t, "app", d, k)
	a := &policy.Attestor{Metadata: policy.ObjectMeta{Name: "public"}, Spec: policy.AttestorSpec{
		PublicSigstore: true, Keyless: &policy.Keyless{Issuer: "https://accounts.example.com", Subject: "ci@example.com"}}}
	v, err := attestation.New(attestation.WithTUFCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := v.Verify(ctx, workload.ParseImage(reg.Host+"/app@"+d), []*policy.Attestor{a})
	if got := r.Attestors[0]; got.Outcome != attestation.Unverifiable || !strings.Contains(got.Reason, "public Sigstore trust root unavailable") {
		t.Errorf("got %v %q, want could not verify: trust root unavailable", got.Outcome, got.Reason)
	}
}
