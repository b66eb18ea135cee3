package attestation_test

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// BenchmarkVerifyCold verifies one image with nothing cached (a new Verifier
// each time) against 1 and 4 attestors, and reports registry requests and
// the process's CPU time per verification (the in-process registry's
// included), which a busy machine disturbs less than wall time.
func BenchmarkVerifyCold(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("attestors=%d", n), func(b *testing.B) {
			reg := at.NewRegistry(b)
			var keys []crypto.Signer
			var atts []*policy.Attestor
			for i := 0; i < n; i++ {
				k := at.ECKey(b, elliptic.P256())
				keys = append(keys, k)
				atts = append(atts, at.KeyAttestor(b, fmt.Sprintf("a%d", i), k))
			}
			ref, d := reg.Push(b, "app", "v1")
			reg.Sign(b, "app", d, keys...)
			img := workload.ParseImage(ref)
			reg.Reset()
			b.ResetTimer()
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				v, _ := attestation.New()
				r := v.Verify(context.Background(), img, atts)
				if r.Attestors[n-1].Outcome != attestation.Verified {
					b.Fatal(r.Attestors[n-1].Reason)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N)/1e3, "cpu-µs/op")
			b.ReportMetric(float64(reg.Count("/v2/"))/float64(b.N), "registry-requests/op")
		})
	}
}

// BenchmarkVerifyColdPair is BenchmarkVerifyCold for 1 and 4 attestors
// interleaved: each iteration verifies both (in alternating order), so both
// meet the same machine load, and it reports the percentiles of each and
// the ratio of their medians. On a shared machine the 10th percentile is the
// closest to a quiet machine's figure.
func BenchmarkVerifyColdPair(b *testing.B) {
	type side struct {
		img  workload.Image
		atts []*policy.Attestor
		lat  []time.Duration
	}
	var sides [2]*side
	for j, n := range []int{1, 4} {
		reg := at.NewRegistry(b)
		s := &side{}
		var keys []crypto.Signer
		for i := 0; i < n; i++ {
			k := at.ECKey(b, elliptic.P256())
			keys = append(keys, k)
			s.atts = append(s.atts, at.KeyAttestor(b, fmt.Sprintf("a%d", i), k))
		}
		ref, d := reg.Push(b, "app", "v1")
		reg.Sign(b, "app", d, keys...)
		s.img = workload.ParseImage(ref)
		sides[j] = s
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range 2 {
			s := sides[(i+k)%2]
			start := time.Now()
			v, _ := attestation.New()
			r := v.Verify(context.Background(), s.img, s.atts)
			s.lat = append(s.lat, time.Since(start))
			if a := r.Attestors[len(s.atts)-1]; a.Outcome != attestation.Verified {
				b.Fatal(a.Reason)
			}
		}
	}
	b.StopTimer()
	pct := func(l []time.Duration, p int) float64 {
		slices.Sort(l)
		return float64(l[(len(l)-1)*p/100].Microseconds()) / 1000
	}
	for j, n := range []int{1, 4} {
		b.ReportMetric(pct(sides[j].lat, 10), fmt.Sprintf("p10-ms(%d)", n))
		b.ReportMetric(pct(sides[j].lat, 50), fmt.Sprintf("p50-ms(%d)", n))
	}
	b.ReportMetric(pct(sides[1].lat, 10)/pct(sides[0].lat, 10), "p10-ratio")
	b.ReportMetric(pct(sides[1].lat, 50)/pct(sides[0].lat, 50), "p50-ratio")
}

// BenchmarkVerifyColdImage is a cold image on a running webhook: one
// Verifier (attestors compiled, registry pinged, connections open) whose
// clock moves two hours per verification, so every one resolves the tag,
// fetches the signatures and verifies them again.
func BenchmarkVerifyColdImage(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("attestors=%d", n), func(b *testing.B) {
			reg := at.NewRegistry(b)
			var keys []crypto.Signer
			var atts []*policy.Attestor
			for i := 0; i < n; i++ {
				k := at.ECKey(b, elliptic.P256())
				keys = append(keys, k)
				atts = append(atts, at.KeyAttestor(b, fmt.Sprintf("a%d", i), k))
			}
			ref, d := reg.Push(b, "app", "v1")
			reg.Sign(b, "app", d, keys...)
			img := workload.ParseImage(ref)
			now := time.Now()
			v, _ := attestation.New(attestation.WithClock(func() time.Time { return now }))
			v.Verify(context.Background(), img, atts)
			reg.Reset()
			b.ResetTimer()
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				now = now.Add(2 * time.Hour)
				r := v.Verify(context.Background(), img, atts)
				if r.Attestors[n-1].Outcome != attestation.Verified {
					b.Fatal(r.Attestors[n-1].Reason)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N)/1e3, "cpu-µs/op")
			b.ReportMetric(float64(reg.Count("/v2/"))/float64(b.N), "registry-requests/op")
		})
	}
}

// BenchmarkVerifyWarm is the cost of a cached verification of one image.
func BenchmarkVerifyWarm(b *testing.B) {
	reg := at.NewRegistry(b)
	k := at.ECKey(b, elliptic.P256())
	ref, d := reg.Push(b, "app", "v1")
	reg.Sign(b, "app", d, k)
	atts := []*policy.Attestor{at.KeyAttestor(b, "ci", k)}
	img := workload.ParseImage(ref)
	v, _ := attestation.New()
	ctx := context.Background()
	v.Verify(ctx, img, atts)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := v.Verify(ctx, img, atts); r.Attestors[0].Outcome != attestation.Verified {
			b.Fatal(r.Attestors[0].Reason)
		}
	}
}

// BenchmarkVerifyWarmWithCredentials is a cached verification for a pod
// with pull secrets: the request's keychain must cost nothing on a hit.
func BenchmarkVerifyWarmWithCredentials(b *testing.B) {
	reg := at.NewRegistry(b)
	k := at.ECKey(b, elliptic.P256())
	ref, d := reg.Push(b, "app", "v1")
	reg.Sign(b, "app", d, k)
	atts := []*policy.Attestor{at.KeyAttestor(b, "ci", k)}
	img := workload.ParseImage(ref)
	v, _ := attestation.New()
	ctx := context.Background()
	creds := attestation.Credentials{Keychain: basicKeychain{"alice", "secret"}, ID: "ns/default/regcred"}
	v.CheckWith(ctx, creds, img, atts, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := v.CheckWith(ctx, creds, img, atts, nil); r.Attestors[0].Outcome != attestation.Verified {
			b.Fatal(r.Attestors[0].Reason)
		}
	}
}

// BenchmarkVerifyColdRoundTrips: a cold verification against a registry
// that answers every request after a fixed delay (a latency-injecting hook
// in front of the in-process registry), by tag and by digest, for 1 and 4
// attestors, with legacy signatures and with Sigstore bundles. round-trips/op
// is the wall time over the delay: how many requests had to wait for one
// another. The dependent chain is: the registry ping (/v2/), then for a tag
// the HEAD, then the signature manifest and its payload blob, concurrently
// with the referrers listing (API and tag fallback asked at once) and, with
// bundles, each bundle's manifest and blob.
func BenchmarkVerifyColdRoundTrips(b *testing.B) {
	for _, delay := range []time.Duration{2 * time.Millisecond, 50 * time.Millisecond} {
		for _, format := range []string{"legacy", "bundle"} {
			for _, byTag := range []bool{false, true} {
				for _, n := range []int{1, 4} {
					for _, known := range []bool{false, true} {
						name := fmt.Sprintf("delay=%s/%s/tag=%v/attestors=%d/known-registry=%v", delay, format, byTag, n, known)
						b.Run(name, func(b *testing.B) { roundTrips(b, delay, format == "bundle", byTag, n, known) })
					}
				}
			}
		}
	}
}

// roundTrips verifies b.N images cold: with known, each a new image on a
// running Verifier that has verified one image of the registry before (what
// it remembers of the registry holds); without, each on a new Verifier.
func roundTrips(b *testing.B, delay time.Duration, bundles, byTag bool, n int, known bool) {
	reg := at.NewRegistry(b)
	var atts []*policy.Attestor
	var keys []crypto.Signer
	for i := 0; i < n; i++ {
		k := at.ECKey(b, elliptic.P256())
		atts, keys = append(atts, at.KeyAttestor(b, fmt.Sprintf("a%d", i), k)), append(keys, k)
	}
	push := func(repo string) workload.Image {
		ref, d := reg.Push(b, repo, "v1")
		if bundles {
			for _, k := range keys {
				reg.SignBundle(b, repo, d, k)
			}
		} else {
			reg.Sign(b, repo, d, keys...) // one .sig image with a layer per key
		}
		if !byTag {
			ref = reg.Host + "/" + repo + "@" + d
		}
		return workload.ParseImage(ref)
	}
	imgs := make([]workload.Image, b.N)
	for i := range imgs {
		imgs[i] = push(fmt.Sprintf("app%d", i))
	}
	running, _ := attestation.New()
	if known {
		running.Verify(context.Background(), push("first"), atts)
	}
	reg.SetFault(func(http.ResponseWriter, *http.Request) bool { time.Sleep(delay); return false })
	reg.Reset()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		v := running
		if !known {
			v, _ = attestation.New()
		}
		r := v.Verify(context.Background(), imgs[i], atts)
		for _, a := range r.Attestors {
			if a.Outcome != attestation.Verified {
				b.Fatal(a.Reason)
			}
		}
	}
	b.ReportMetric(float64(time.Since(start))/float64(b.N)/float64(delay), "round-trips/op")
	b.ReportMetric(float64(reg.Count("/v2/"))/float64(b.N), "registry-requests/op")
}
