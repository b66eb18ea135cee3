package attestation_test

import (
	"context"
	"crypto/elliptic"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// A registry slower than the request must not use the whole budget: the
// facts come back with the attestor's typed timeout while the request's
// context still has time for the decision.
func TestSlowRegistryLeavesTimeToDecide(t *testing.T) {
	reg := at.NewRegistry(t)
	k := at.ECKey(t, elliptic.P256())
	_, d := reg.Push(t, "app", "v1")
	gate := make(chan struct{})
	defer close(gate)
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool { <-gate; return false })
	src := attestation.NewSource(newVerifier(t), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	fs, err := src.Facts(ctx, facts.Request{Images: []workload.Image{workload.ParseImage(reg.Host + "/app@" + d)},
		Attestors: []*policy.Attestor{at.KeyAttestor(t, "ci", k)}})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Errorf("facts used the whole budget: nothing left to decide with")
	}
	f := fs[0]
	if len(f.Unverifiable) != 1 || f.Unverifiable[0] != "ci" || !strings.Contains(f.AttestorErrors["ci"], "timeout") {
		t.Errorf("want ci unverifiable with a timeout, got %+v", f)
	}
}

// staleSetup verifies an image once, then makes the registry hang and moves
// the clock past the TTL (within stale-if-error).
func staleSetup(t *testing.T) (v *attestation.Verifier, ref string, att *policy.Attestor, gate chan struct{}) {
	reg := at.NewRegistry(t)
	k := at.ECKey(t, elliptic.P256())
	_, d := reg.Push(t, "app", "v1")
	reg.Sign(t, "app", d, k)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	v = newVerifier(t, attestation.WithClock(clock), attestation.WithCacheTTL(time.Minute), attestation.WithStaleIfError(time.Hour))
	att = at.KeyAttestor(t, "ci", k)
	ref = reg.Host + "/app@" + d
	if o, why := outcome(verify(t, v, ref, att), "ci"); o != attestation.Verified {
		t.Fatalf("not verified at first: %s", why)
	}
	gate = make(chan struct{})
	t.Cleanup(func() { close(gate) })
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool { <-gate; return false })
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	return v, ref, att, gate
}

// stale-if-error covers a registry that is slow, not only one that is down.
func TestStaleWhenRegistryTimesOut(t *testing.T) {
	v, ref, att, _ := staleSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	r := v.Verify(ctx, workload.ParseImage(ref), []*policy.Attestor{att})
	if o, why := outcome(r, "ci"); o != attestation.Verified || !r.Stale {
		t.Errorf("want the stale verdict, got %v %q stale=%v", o, why, r.Stale)
	}
}

// A request whose deadline ends while it waits on another request's fetch
// is served stale too.
func TestStaleWhenJoinedFetchOutlivesDeadline(t *testing.T) {
	v, ref, att, _ := staleSetup(t)
	leaderCtx, cancelLeader := context.WithTimeout(context.Background(), time.Minute)
	defer cancelLeader()
	started := make(chan struct{})
	go func() {
		close(started)
		v.Verify(leaderCtx, workload.ParseImage(ref), []*policy.Attestor{att})
	}()
	<-started
	// The leader's fetch hangs until the test ends; this request joins it.
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	r := v.Verify(ctx, workload.ParseImage(ref), []*policy.Attestor{att})
	if o, why := outcome(r, "ci"); o != attestation.Verified || !r.Stale {
		t.Errorf("want the stale verdict, got %v %q stale=%v", o, why, r.Stale)
	}
	cancelLeader()
}
