package cosignlib

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// fixture is one image signed by n keys, and an attestor per key.
func fixture(b *testing.B, n int) (*at.Registry, string, []crypto.Signer, []*policy.Attestor) {
	reg := at.NewRegistry(b)
	_, d := reg.Push(b, "app", "v1")
	var keys []crypto.Signer
	var atts []*policy.Attestor
	for i := 0; i < n; i++ {
		k := at.ECKey(b, elliptic.P256())
		keys = append(keys, k)
		atts = append(atts, at.KeyAttestor(b, fmt.Sprintf("a%d", i), k))
	}
	reg.Sign(b, "app", d, keys...)
	return reg, reg.Host + "/app@" + d, keys, atts
}

// BenchmarkCosignLibraryPerAttestor: cosign.VerifyImageSignatures once per
// attestor (key verifier, transparency log ignored), as a webhook built on
// the cosign library does.
func BenchmarkCosignLibraryPerAttestor(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("attestors=%d", n), func(b *testing.B) {
			reg, ref, keys, _ := fixture(b, n)
			r, err := name.ParseReference(ref)
			if err != nil {
				b.Fatal(err)
			}
			var opts []*cosign.CheckOpts
			for _, k := range keys {
				pemKey, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
				if err != nil {
					b.Fatal(err)
				}
				pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemKey)
				if err != nil {
					b.Fatal(err)
				}
				sv, err := signature.LoadVerifier(pub, crypto.SHA256)
				if err != nil {
					b.Fatal(err)
				}
				opts = append(opts, &cosign.CheckOpts{SigVerifier: sv, IgnoreTlog: true, ClaimVerifier: cosign.SimpleClaimVerifier})
			}
			ctx := context.Background()
			reg.Reset()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, co := range opts {
					if _, _, err := cosign.VerifyImageSignatures(ctx, r, co); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(reg.Count("/v2/"))/float64(b.N), "registry-requests/op")
		})
	}
}

// BenchmarkImagegateCold is attestation.Verifier with nothing cached, on the
// same kind of fixture, for the side-by-side table.
func BenchmarkImagegateCold(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("attestors=%d", n), func(b *testing.B) {
			reg, ref, _, atts := fixture(b, n)
			img := workload.ParseImage(ref)
			reg.Reset()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				v, err := attestation.New()
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res := v.Verify(ctx, img, atts)
				cancel()
				for _, a := range res.Attestors {
					if a.Outcome != attestation.Verified {
						b.Fatalf("%s: %v %s", a.Attestor, a.Outcome, a.Reason)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(reg.Count("/v2/"))/float64(b.N), "registry-requests/op")
		})
	}
}
