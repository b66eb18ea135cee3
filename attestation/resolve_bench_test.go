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
	img := workload.ParseImage(ref)
	for _, tc := range []struct {
		name  string
		creds attestation.Credentials
	}{
		{"process-keychain", attestation.Credentials{}},
		{"pod-credentials", attestation.Credentials{Keychain: authn.NewMultiKeychain(authn.DefaultKeychain), ID: "ns/default/"}},
	} {
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
