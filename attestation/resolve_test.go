package attestation_test

import (
	"context"
	"crypto/elliptic"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// TestResolveSeesAMovedTag: a tag moved between two resolutions is seen by
// the second (no cache across admissions), even right after Check has
// cached the old digest for verification.
func TestResolveSeesAMovedTag(t *testing.T) {
	reg := at.NewRegistry(t)
	ref, first := reg.Push(t, "app", "v1")
	v := newVerifier(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	img := workload.ParseImage(ref)
	if r := v.Check(ctx, img, []*policy.Attestor{at.KeyAttestor(t, "ci", at.ECKey(t, elliptic.P256()))}, nil); r.Digest != first {
		t.Fatalf("Check resolved %q, want %q", r.Digest, first)
	}
	got, err := v.Resolve(ctx, attestation.Credentials{}, img)
	if err != nil || got != first {
		t.Fatalf("Resolve = %q, %v; want %q", got, err, first)
	}
	_, second := reg.Push(t, "app", "v1") // the tag moves
	if second == first {
		t.Fatal("the push did not move the tag")
	}
	reg.Reset()
	got, err = v.Resolve(ctx, attestation.Credentials{}, img)
	if err != nil || got != second {
		t.Fatalf("after the tag moved: Resolve = %q, %v; want %q", got, err, second)
	}
	if n := reg.Count("HEAD /v2/app/manifests/v1"); n != 1 {
		t.Errorf("%d HEAD requests for the tag, want 1", n)
	}
	// A reference by digest needs no registry.
	reg.Reset()
	byDigest := workload.ParseImage(reg.Host + "/app@" + first)
	if got, err := v.Resolve(ctx, attestation.Credentials{}, byDigest); err != nil || got != first {
		t.Errorf("by digest: %q, %v", got, err)
	}
	if n := reg.Count(""); n != 0 {
		t.Errorf("by digest: %d registry requests", n)
	}
}

// TestResolveCoalesces: concurrent resolutions of one tag with the same
// credentials share one HEAD; other credentials do not join them.
func TestResolveCoalesces(t *testing.T) {
	reg := at.NewRegistry(t)
	ref, digest := reg.Push(t, "app", "hot")
	release := make(chan struct{})
	var once sync.Once
	entered := make(chan struct{})
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead {
			once.Do(func() { close(entered) })
			<-release // hold the first HEAD until every caller has asked
		}
		return false
	})
	reg.Reset()
	v := newVerifier(t)
	img := workload.ParseImage(ref)
	const n = 20
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]string, n)
	errs := make([]error, n)
	resolve := func(i int, creds attestation.Credentials) {
		defer wg.Done()
		results[i], errs[i] = v.Resolve(ctx, creds, img)
	}
	wg.Add(1)
	go resolve(0, attestation.Credentials{})
	<-entered
	for i := 1; i < n; i++ {
		wg.Add(1)
		go resolve(i, attestation.Credentials{})
	}
	time.Sleep(100 * time.Millisecond) // the joiners are waiting on the flight
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i] != digest {
			t.Fatalf("caller %d: %q, %v", i, results[i], errs[i])
		}
	}
	if got := reg.Count("HEAD /v2/app/manifests/hot"); got != 1 {
		t.Errorf("%d concurrent resolutions made %d HEAD requests, want 1", n, got)
	}
	// Sequential resolutions are not coalesced: each asks the registry.
	reg.Reset()
	for range 2 {
		if _, err := v.Resolve(ctx, attestation.Credentials{}, img); err != nil {
			t.Fatal(err)
		}
	}
	if got := reg.Count("HEAD /v2/app/manifests/hot"); got != 2 {
		t.Errorf("2 sequential resolutions made %d HEAD requests, want 2", got)
	}
}

// TestResolveErrors: registry failures and bad references are
// UnverifiableErrors naming the cause, a missing tag a VerificationError; a
// joiner leaves at its own deadline.
func TestResolveErrors(t *testing.T) {
	reg := at.NewRegistry(t)
	ref, _ := reg.Push(t, "app", "x")
	v := newVerifier(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ue *attestation.UnverifiableError

	if _, err := v.Resolve(ctx, attestation.Credentials{}, workload.ParseImage("Bad Ref")); !errors.As(err, &ue) || !strings.Contains(err.Error(), "invalid image reference") {
		t.Errorf("bad reference: %v", err)
	}
	// A tag the registry says it does not have is an answer, not a
	// failure to reach it: not verified.
	var ve *attestation.VerificationError
	if _, err := v.Resolve(ctx, attestation.Credentials{}, workload.ParseImage(reg.Host+"/app:missing")); !errors.As(err, &ve) || !strings.Contains(err.Error(), "resolving the tag") {
		t.Errorf("missing tag: %v", err)
	}
	requireAuth(reg)
	if _, err := v.Resolve(ctx, attestation.Credentials{}, workload.ParseImage(ref)); err == nil || !strings.Contains(err.Error(), "registry refused access (auth)") {
		t.Errorf("no credentials: %v", err)
	}
	if d, err := v.Resolve(ctx, attestation.Credentials{Keychain: basicKeychain{"alice", "secret"}, ID: "alice"}, workload.ParseImage(ref)); err != nil || d == "" {
		t.Errorf("pod credentials: %q, %v", d, err)
	}
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		time.Sleep(time.Second)
		return false
	})
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	if _, err := v.Resolve(short, attestation.Credentials{}, workload.ParseImage(ref)); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("slow registry: %v", err)
	}
	if took := time.Since(start); took > 700*time.Millisecond {
		t.Errorf("answered after %v; the deadline was 200ms", took)
	}
}
