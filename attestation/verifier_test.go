package attestation_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

func newVerifier(t *testing.T, opts ...attestation.Option) *attestation.Verifier {
	t.Helper()
	v, err := attestation.New(append([]attestation.Option{attestation.WithRetries(2, 10*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func verify(t *testing.T, v *attestation.Verifier, ref string, atts ...*policy.Attestor) attestation.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return v.Verify(ctx, workload.ParseImage(ref), atts)
}

func outcome(r attestation.Result, attestor string) (attestation.Outcome, string) {
	for _, a := range r.Attestors {
		if a.Attestor == attestor {
			return a.Outcome, a.Reason
		}
	}
	return -1, "no result"
}

func TestVerifyOutcomes(t *testing.T) {
	reg := at.NewRegistry(t)
	ci, other := at.ECKey(t, elliptic.P256()), at.ECKey(t, elliptic.P256())
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	p384 := at.ECKey(t, elliptic.P384())

	signed, signedDigest := reg.Push(t, "app", "signed")
	reg.Sign(t, "app", signedDigest, ci)
	_, otherDigest := reg.Push(t, "app", "other-key")
	reg.Sign(t, "app", otherDigest, other)
	unsigned, _ := reg.Push(t, "app", "unsigned")
	_, tamperedDigest := reg.Push(t, "app", "tampered")
	p := at.Payload(reg.Host+"/app", tamperedDigest)
	reg.Attach(t, "app", tamperedDigest, at.Layer{Payload: []byte(strings.Replace(string(p), "optional\":null", "optional\":{\"x\":1}", 1)),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": at.SignWith(t, ci, p)}})
	_, copiedDigest := reg.Push(t, "app", "copied")
	// A valid signature of another image, copied onto this one.
	reg.Attach(t, "app", copiedDigest, at.Layer{Payload: at.Payload(reg.Host+"/app", signedDigest),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": at.SignWith(t, ci, at.Payload(reg.Host+"/app", signedDigest))}})
	_, multiDigest := reg.Push(t, "app", "multi")
	reg.Sign(t, "app", multiDigest, rsaKey, edKey, p384)
	_, garbageDigest := reg.Push(t, "app", "garbage")
	reg.Attach(t, "app", garbageDigest, at.Layer{Payload: []byte("not json"), Annotations: map[string]string{"dev.cosignproject.cosign/signature": at.SignWith(t, ci, []byte("not json"))}})

	ciAtt, qaAtt := at.KeyAttestor(t, "ci", ci), at.KeyAttestor(t, "qa", other)
	cases := []struct {
		name, ref string
		att       *policy.Attestor
		want      attestation.Outcome
		reason    string
	}{
		{"valid key, by tag", signed, ciAtt, attestation.Verified, ""},
		{"valid key, by digest", reg.Host + "/app@" + signedDigest, ciAtt, attestation.Verified, ""},
		{"wrong key", reg.Host + "/app@" + otherDigest, ciAtt, attestation.NotVerified, "signed by another key"},
		{"no signature", unsigned, ciAtt, attestation.NotVerified, "no signatures found"},
		{"tampered payload", reg.Host + "/app@" + tamperedDigest, ciAtt, attestation.NotVerified, "signed by another key"},
		{"signature for another digest", reg.Host + "/app@" + copiedDigest, ciAtt, attestation.NotVerified, "digest mismatch"},
		{"RSA", reg.Host + "/app@" + multiDigest, at.KeyAttestor(t, "rsa", rsaKey), attestation.Verified, ""},
		{"Ed25519", reg.Host + "/app@" + multiDigest, at.KeyAttestor(t, "ed", edKey), attestation.Verified, ""},
		{"P-384", reg.Host + "/app@" + multiDigest, at.KeyAttestor(t, "p384", p384), attestation.Verified, ""},
		{"any of several keys", reg.Host + "/app@" + otherDigest, at.KeyAttestor(t, "either", ci, other), attestation.Verified, ""},
		{"bad payload", reg.Host + "/app@" + garbageDigest, ciAtt, attestation.NotVerified, "bad signature payload"},
		{"missing tag", reg.Host + "/app:nope", ciAtt, attestation.Unverifiable, "resolving the tag"},
	}
	v := newVerifier(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := outcome(verify(t, v, c.ref, c.att), c.att.Metadata.Name)
			if got != c.want || !strings.Contains(why, c.reason) {
				t.Errorf("got %v (%q), want %v (%q)", got, why, c.want, c.reason)
			}
		})
	}
	// ci's verdict is remembered from the cases above, qa's is not; the
	// second round has both remembered.
	for _, round := range []string{"one verdict remembered", "both remembered"} {
		t.Run("two attestors, one missing, "+round, func(t *testing.T) {
			r := verify(t, v, signed, ciAtt, qaAtt)
			if o, _ := outcome(r, "ci"); o != attestation.Verified {
				t.Errorf("ci: %v", o)
			}
			if o, why := outcome(r, "qa"); o != attestation.NotVerified || !strings.Contains(why, "signed by another key") {
				t.Errorf("qa: %v %q", o, why)
			}
			if r.Digest != signedDigest {
				t.Errorf("digest %q, want %q", r.Digest, signedDigest)
			}
		})
	}
}

// Registry requests per image do not grow with the number of attestors.
func TestOneFetchForManyAttestors(t *testing.T) {
	reg := at.NewRegistry(t)
	k1, k2, k3, k4 := at.ECKey(t, elliptic.P256()), at.ECKey(t, elliptic.P256()), at.ECKey(t, elliptic.P256()), at.ECKey(t, elliptic.P256())
	ref1, d1 := reg.Push(t, "one", "v1")
	reg.Sign(t, "one", d1, k1)
	ref4, d4 := reg.Push(t, "four", "v1")
	reg.Sign(t, "four", d4, k1, k2, k3, k4)
	// A Verifier each: the second would know the registry already
	// (TestRegistryAnswersRemembered).
	reg.Reset()
	verify(t, newVerifier(t), ref1, at.KeyAttestor(t, "a1", k1))
	one := reg.Count("/v2/")
	reg.Reset()
	v := newVerifier(t)
	r := verify(t, v, ref4, at.KeyAttestor(t, "a1", k1), at.KeyAttestor(t, "a2", k2), at.KeyAttestor(t, "a3", k3), at.KeyAttestor(t, "a4", k4))
	four := reg.Count("/v2/")
	for _, a := range r.Attestors {
		if a.Outcome != attestation.Verified {
			t.Errorf("%s: %v %s", a.Attestor, a.Outcome, a.Reason)
		}
	}
	// Four signers sign one payload: one blob, nothing per attestor.
	if four != one {
		t.Errorf("1 attestor: %d requests, 4 attestors: %d", one, four)
	}
	reg.Reset()
	verify(t, v, ref4, at.KeyAttestor(t, "a1", k1))
	if n := reg.Count("/v2/"); n != 0 {
		t.Errorf("warm verification made %d registry requests", n)
	}
}

func TestSingleFlight(t *testing.T) {
	reg := at.NewRegistry(t)
	k := at.ECKey(t, elliptic.P256())
	_, d := reg.Push(t, "burst", "v1")
	reg.Sign(t, "burst", d, k)
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		time.Sleep(20 * time.Millisecond) // a registry with some latency
		return false
	})
	v := newVerifier(t)
	att := at.KeyAttestor(t, "ci", k)
	reg.Reset()
	var wg sync.WaitGroup
	var failures sync.Map
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := verify(t, v, reg.Host+"/burst@"+d, att)
			if o, why := outcome(r, "ci"); o != attestation.Verified {
				failures.Store(i, why)
			}
		}(i)
	}
	wg.Wait()
	failures.Range(func(k, v any) bool { t.Errorf("admission %v: %v", k, v); return false })
	if n := reg.Count(".sig"); n != 1 {
		t.Errorf("200 concurrent admissions made %d signature fetches, want 1", n)
	}
}

func TestFaults(t *testing.T) {
	k := at.ECKey(t, elliptic.P256())
	att := at.KeyAttestor(t, "ci", k)
	t.Run("registry down", func(t *testing.T) {
		reg := at.NewRegistry(t)
		ref, _ := reg.Push(t, "app", "v1")
		reg.Close()
		o, why := outcome(verify(t, newVerifier(t), ref, att), "ci")
		if o != attestation.Unverifiable || !strings.Contains(why, "unreachable") {
			t.Errorf("%v %q", o, why)
		}
	})
	t.Run("slower than the deadline", func(t *testing.T) {
		reg := at.NewRegistry(t)
		_, d := reg.Push(t, "app", "v1")
		reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool { time.Sleep(2 * time.Second); return false })
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		r := newVerifier(t).Verify(ctx, workload.ParseImage(reg.Host+"/app@"+d), []*policy.Attestor{att})
		if took := time.Since(start); took > time.Second {
			t.Errorf("answered after %v", took)
		}
		if o, why := outcome(r, "ci"); o != attestation.Unverifiable || !strings.Contains(why, "timeout") {
			t.Errorf("%v %q", o, why)
		}
	})
	t.Run("429 then success, honouring Retry-After", func(t *testing.T) {
		reg := at.NewRegistry(t)
		_, d := reg.Push(t, "app", "v1")
		reg.Sign(t, "app", d, k)
		var n int
		var mu sync.Mutex
		reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
			mu.Lock()
			defer mu.Unlock()
			if n++; n <= 2 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}
			return false
		})
		if o, why := outcome(verify(t, newVerifier(t), reg.Host+"/app@"+d, att), "ci"); o != attestation.Verified {
			t.Errorf("%v %q", o, why)
		}
	})
	t.Run("500 forever", func(t *testing.T) {
		reg := at.NewRegistry(t)
		_, d := reg.Push(t, "app", "v1")
		reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool { w.WriteHeader(500); return true })
		if o, why := outcome(verify(t, newVerifier(t), reg.Host+"/app@"+d, att), "ci"); o != attestation.Unverifiable || !strings.Contains(why, "failing") {
			t.Errorf("%v %q", o, why)
		}
	})
	t.Run("garbage manifest", func(t *testing.T) {
		reg := at.NewRegistry(t)
		_, d := reg.Push(t, "app", "v1")
		reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
			if strings.Contains(r.URL.Path, ".sig") {
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				w.Write([]byte("{{{{garbage"))
				return true
			}
			return false
		})
		// What the registry served is the image's material: a manifest
		// that does not parse is "not verified", never "could not verify"
		// (which --on-verification-error=allow would admit).
		if o, why := outcome(verify(t, newVerifier(t), reg.Host+"/app@"+d, att), "ci"); o != attestation.NotVerified {
			t.Errorf("%v %q, want not verified", o, why)
		}
	})
	t.Run("huge blob is not read whole", func(t *testing.T) {
		reg := at.NewRegistry(t)
		_, d := reg.Push(t, "app", "v1")
		big := make([]byte, 2<<20)
		reg.Attach(t, "app", d, at.Layer{Payload: big, Annotations: map[string]string{"dev.cosignproject.cosign/signature": at.SignWith(t, k, big)}})
		r := verify(t, newVerifier(t, attestation.WithMaxResponseBytes(64<<10)), reg.Host+"/app@"+d, att)
		if o, why := outcome(r, "ci"); o != attestation.NotVerified || !strings.Contains(why, "too large") {
			t.Errorf("%v %q", o, why)
		}
	})
	t.Run("plain HTTP refused off loopback", func(t *testing.T) {
		v := newVerifier(t)
		r := verify(t, v, "registry.example.com:80/app@sha256:"+strings.Repeat("a", 64), att)
		if o, _ := outcome(r, "ci"); o != attestation.Unverifiable {
			t.Errorf("%v", o)
		}
	})
}

func TestStaleIfError(t *testing.T) {
	reg := at.NewRegistry(t)
	k := at.ECKey(t, elliptic.P256())
	_, d := reg.Push(t, "app", "v1")
	reg.Sign(t, "app", d, k)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	v := newVerifier(t, attestation.WithClock(clock), attestation.WithCacheTTL(time.Minute), attestation.WithStaleIfError(time.Hour))
	att := at.KeyAttestor(t, "ci", k)
	ref := reg.Host + "/app@" + d
	if o, _ := outcome(verify(t, v, ref, att), "ci"); o != attestation.Verified {
		t.Fatal("not verified at first")
	}
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool { w.WriteHeader(503); return true })
	advance(2 * time.Minute)
	r := verify(t, v, ref, att)
	if o, _ := outcome(r, "ci"); o != attestation.Verified || !r.Stale {
		t.Errorf("within stale-if-error: %+v", r)
	}
	advance(2 * time.Hour)
	if o, _ := outcome(verify(t, v, ref, att), "ci"); o != attestation.Unverifiable {
		t.Errorf("past stale-if-error: %v", o)
	}
}

func TestNoGoroutinesLeft(t *testing.T) {
	reg := at.NewRegistry(t)
	k := at.ECKey(t, elliptic.P256())
	_, d := reg.Push(t, "app", "v1")
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool { time.Sleep(200 * time.Millisecond); return false })
	before := runtime.NumGoroutine()
	v := newVerifier(t)
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		v.Verify(ctx, workload.ParseImage(reg.Host+"/app@"+d), []*policy.Attestor{at.KeyAttestor(t, "ci", k)})
		cancel()
	}
	reg.SetFault(nil)
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("goroutines: %d before, %d after", before, after)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, opts := range [][]attestation.Option{
		{attestation.WithCacheTTL(0)},
		{attestation.WithNegativeTTL(time.Hour), attestation.WithCacheTTL(time.Minute)},
		{attestation.WithCacheSize(0)},
		{attestation.WithTransport(nil)},
	} {
		if _, err := attestation.New(opts...); err == nil {
			t.Errorf("accepted %v", opts)
		}
	}
}

var _ crypto.Signer = (*rsa.PrivateKey)(nil)

// TestManyAttestorsShareSignatures: attestors checked together share what
// each learnt about the image's signatures (which key verified which); every
// verdict stays what it would be alone, whatever the order.
func TestManyAttestorsShareSignatures(t *testing.T) {
	reg := at.NewRegistry(t)
	var keys []crypto.Signer
	for i := 0; i < 4; i++ {
		keys = append(keys, at.ECKey(t, elliptic.P256()))
	}
	_, d := reg.Push(t, "many", "v1")
	reg.Sign(t, "many", d, keys...)
	ref := reg.Host + "/many@" + d
	outsider := at.ECKey(t, elliptic.P256())
	orders := [][]*policy.Attestor{
		{at.KeyAttestor(t, "a0", keys[0]), at.KeyAttestor(t, "a1", keys[1]), at.KeyAttestor(t, "a2", keys[2]), at.KeyAttestor(t, "a3", keys[3]), at.KeyAttestor(t, "out", outsider)},
		{at.KeyAttestor(t, "out", outsider), at.KeyAttestor(t, "a3", keys[3]), at.KeyAttestor(t, "both", keys[2], keys[0]), at.KeyAttestor(t, "a1", keys[1])},
		{at.KeyAttestor(t, "out-or-a2", outsider, keys[2]), at.KeyAttestor(t, "a2", keys[2]), at.KeyAttestor(t, "a0", keys[0])},
	}
	for i, atts := range orders {
		v := newVerifier(t) // nothing cached: the attestors meet the signatures together
		r := verify(t, v, ref, atts...)
		for _, a := range atts {
			want := attestation.Verified
			if a.Metadata.Name == "out" {
				want = attestation.NotVerified
			}
			if o, why := outcome(r, a.Metadata.Name); o != want {
				t.Errorf("order %d: %s: %v (%s), want %v", i, a.Metadata.Name, o, why, want)
			}
		}
	}
}

// TestWarmVerificationAllocations holds the warm path's allocations (the
// figure BenchmarkVerifyWarm reports): a cached verdict costs no reference
// parsing and no cache-key building beyond one string.
func TestWarmVerificationAllocations(t *testing.T) {
	if raceDetector {
		t.Skip("the race detector allocates on its own")
	}
	reg := at.NewRegistry(t)
	k := at.ECKey(t, elliptic.P256())
	ref, d := reg.Push(t, "app", "v1")
	reg.Sign(t, "app", d, k)
	atts := []*policy.Attestor{at.KeyAttestor(t, "ci", k)}
	img := workload.ParseImage(ref)
	v := newVerifier(t)
	ctx := context.Background()
	if r := v.Verify(ctx, img, atts); r.Attestors[0].Outcome != attestation.Verified {
		t.Fatal(r.Attestors[0].Reason)
	}
	if n := testing.AllocsPerRun(200, func() { v.Verify(ctx, img, atts) }); n > 2 {
		t.Errorf("warm verification: %.0f allocations, want at most 2", n)
	}
}
