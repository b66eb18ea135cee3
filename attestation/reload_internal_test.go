package attestation

import (
	"context"
	"crypto/elliptic"
	"testing"
	"time"

	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// Every policy reload makes new attestor objects. What the verifier keeps
// per attestor must not grow with reloads, and an unchanged definition keeps
// its compiled verifier (and its remembered verdicts).
func TestPolicyReloadsKeepAttestorStateBounded(t *testing.T) {
	reg := at.NewRegistry(t)
	k, other := at.ECKey(t, elliptic.P256()), at.ECKey(t, elliptic.P256())
	_, d := reg.Push(t, "app", "v1")
	reg.Sign(t, "app", d, k)
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	pemK, pemOther := at.PubPEM(t, k), at.PubPEM(t, other)
	// A snapshot's attestors: ci (unchanged by reloads), qa (unchanged) and
	// one whose key changes with every reload.
	snapshot := func(i int) []*policy.Attestor {
		mk := func(name string, keys ...string) *policy.Attestor {
			a := &policy.Attestor{Metadata: policy.ObjectMeta{Name: name}}
			a.Spec.PublicKeys, a.Spec.TransparencyLog = keys, "ignore"
			return a
		}
		changing := pemOther
		if i%2 == 1 {
			changing = pemK
		}
		return []*policy.Attestor{mk("ci", pemK), mk("qa", pemOther), mk("rotating", changing, pemOther)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img := workload.ParseImage(reg.Host + "/app@" + d)
	first, _ := v.checks.load(snapshot(0)[0]) // nothing yet
	if first != nil {
		t.Fatal("compiled before use")
	}
	var ci0 *compiledAttestor
	for i := range 600 {
		atts := snapshot(i)
		r := v.Verify(ctx, img, atts)
		if r.Attestors[0].Outcome != Verified || r.Attestors[1].Outcome != NotVerified {
			t.Fatalf("reload %d: %+v", i, r.Attestors)
		}
		c, _ := v.checks.load(atts[0])
		if i == 0 {
			ci0 = c
		} else if c.ver != ci0.ver {
			t.Fatalf("reload %d compiled the unchanged attestor again", i)
		}
	}
	if n := v.checks.len(); n > 2*DefaultMaxAttestors {
		t.Errorf("%d compiled attestor entries after 600 reloads, want at most %d", n, 2*DefaultMaxAttestors)
	}
}
