package attestation_test

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/workload"
)

// BenchmarkResolve is digest pinning's tag resolution on a running
// Verifier (never cached: one HEAD per call), with the process keychain and
// with a pod's own credentials (a registry client per call).
func BenchmarkResolve(b *testing.B) {
	reg := at.NewRegistry(b)
	ref, _ := reg.Push(b, "app", "v1")
	// A registry handing out bearer tokens to alice's pull secret.
	private := at.NewRegistry(b)
	privateRef, _ := private.Push(b, "app", "v1")
	newTokenRegistry(private)
	for _, tc := range []struct {
		name  string
		reg   *at.Registry
		ref   string
		creds attestation.Credentials
	}{
		{"process-keychain", reg, ref, attestation.Credentials{}},
		{"pod-credentials", reg, ref, attestation.Credentials{Keychain: authn.NewMultiKeychain(authn.DefaultKeychain), ID: "ns/default/"}},
		{"pod-credentials-token", private, privateRef, attestation.Credentials{Keychain: basicKeychain{"alice", "secret"}, ID: "ns/default/pull"}},
	} {
		img, reg := workload.ParseImage(tc.ref), tc.reg
		b.Run(tc.name, func(b *testing.B) {
			v, _ := attestation.New()
			if _, err := v.Resolve(context.Background(), tc.creds, img); err != nil {
				b.Fatal(err)
			}
			reg.Reset()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := v.Resolve(context.Background(), tc.creds, img); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(len(reg.Requests()))/float64(b.N), "registry-requests/op")
		})
	}
}
