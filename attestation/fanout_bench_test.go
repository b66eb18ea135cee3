package attestation_test

import (
	"context"
	"crypto/elliptic"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// BenchmarkNormalPodBesideLargePods: a one-image pod, never seen before,
// against a registry answering every request after 5 ms, alone and while
// two pods of 64 new images each are being verified again and again. It
// reports the normal pod's median and p95; with the fetch bounds they stay
// close to the alone case.
func BenchmarkNormalPodBesideLargePods(b *testing.B) {
	for _, large := range []int{0, 2} {
		b.Run(fmt.Sprintf("large-pods=%d", large), func(b *testing.B) {
			reg := at.NewRegistry(b)
			k := at.ECKey(b, elliptic.P256())
			reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool { time.Sleep(5 * time.Millisecond); return false })
			v, err := attestation.New()
			if err != nil {
				b.Fatal(err)
			}
			src := attestation.NewSource(v, nil)
			atts := []*policy.Attestor{at.KeyAttestor(b, "ci", k)}
			var seq atomic.Int64
			image := func(repo string) workload.Image {
				return workload.ParseImage(fmt.Sprintf("%s/%s@sha256:%064x", reg.Host, repo, seq.Add(1)))
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range large {
				wg.Go(func() {
					for ctx.Err() == nil {
						var imgs []workload.Image
						for range 64 {
							imgs = append(imgs, image("large"))
						}
						rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
						_, _ = src.Facts(rctx, facts.Request{Images: imgs, Attestors: atts})
						rcancel()
					}
				})
			}
			time.Sleep(50 * time.Millisecond) // the large pods are under way
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
				fs, err := src.Facts(rctx, facts.Request{Images: []workload.Image{image("normal")}, Attestors: atts})
				rcancel()
				if err != nil || len(fs[0].Unverifiable) > 0 {
					b.Fatalf("normal pod: %v %+v", err, fs[0])
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			cancel()
			wg.Wait()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}
