package attestation

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature"
)

// countingKey counts the signature verifications the libraries make with a
// key: cosign and sigstore-go call it, and it still verifies.
type countingKey struct {
	signature.Verifier
	n *atomic.Int64
}

func (k countingKey) VerifySignature(sig, msg io.Reader, opts ...signature.VerifyOption) error {
	k.n.Add(1)
	return k.Verifier.VerifySignature(sig, msg, opts...)
}

func countKeys(v *verifier, n *atomic.Int64) {
	for i := range v.keys {
		v.keys[i] = countingKey{v.keys[i], n}
	}
}

func noPublicRoot() (root.TrustedMaterial, error) {
	return nil, fmt.Errorf("no public root in this test")
}

// keyAttestors are one key attestor per key, compiled, their verifications
// counted in n.
func keyAttestors(t *testing.T, keys []crypto.Signer, n *atomic.Int64) ([]*policy.Attestor, []*verifier) {
	t.Helper()
	var atts []*policy.Attestor
	var vs []*verifier
	for i, k := range keys {
		a := at.KeyAttestor(t, fmt.Sprintf("a%d", i), k)
		v, err := newVerifier(a, noPublicRoot)
		if err != nil {
			t.Fatal(err)
		}
		countKeys(v, n)
		atts, vs = append(atts, a), append(vs, v)
	}
	return atts, vs
}

func ecKeys(t *testing.T, n int) []crypto.Signer {
	var keys []crypto.Signer
	for range n {
		keys = append(keys, at.ECKey(t, elliptic.P256()))
	}
	return keys
}

// An image signed by each of 4 attestors' keys, in the attestors' order,
// costs exactly 4 library verifications when the 4 are checked together
// cold, in parallel: each attestor starts at its own signature.
func TestColdAttestorsVerifyEachSignatureOnce(t *testing.T) {
	for _, n := range []int{1, 4} {
		t.Run(fmt.Sprintf("attestors=%d", n), func(t *testing.T) {
			reg := at.NewRegistry(t)
			keys := ecKeys(t, n)
			ref, d := reg.Push(t, "app", "v1")
			reg.Sign(t, "app", d, keys...)
			for round := range 20 { // whatever the scheduling
				var count atomic.Int64
				atts, vs := keyAttestors(t, keys, &count)
				v, err := New()
				if err != nil {
					t.Fatal(err)
				}
				for i, a := range atts {
					// Compiled already: Verify uses these counted verifiers.
					key, _, _ := v.verifierFor(a)
					c := &compiledAttestor{key: key, ver: vs[i]}
					v.checks.store(a, c)
					v.checks.store(key, c)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				r := v.Verify(ctx, workload.ParseImage(ref), atts)
				cancel()
				for _, a := range r.Attestors {
					if a.Outcome != Verified {
						t.Fatalf("round %d: %s: %s", round, a.Attestor, a.Reason)
					}
				}
				if got := count.Load(); got != int64(n) {
					t.Fatalf("round %d: %d library verifications, want %d", round, got, n)
				}
			}
		})
	}
}

// Attestors checked one after another over signatures in the reverse of
// their order: a signature proven another key's costs no library call, so
// 4 attestors cost 4+2+2+1 verifications, not 4+2+4+2; bundles naming their
// key are tried by that key's attestor first, 4 in all. A bundle naming the
// wrong key is still tried.
func TestProvenSignaturesAreNotTriedAgain(t *testing.T) {
	keys := ecKeys(t, 4)
	rev := slices.Clone(keys)
	slices.Reverse(rev)
	for _, tc := range []struct {
		format string
		want   int64 // 0: any number, all verified
	}{
		{"legacy", 9},
		{"bundle", 9},
		{"bundle naming its key", 4},
		{"bundle naming another key", 0},
	} {
		t.Run(tc.format, func(t *testing.T) {
			s := signedBy(t, tc.format, rev...)
			var count atomic.Int64
			_, vs := keyAttestors(t, keys, &count)
			for i, v := range vs {
				if err := v.verify(fuzzDigest, s, i); err != nil {
					t.Fatalf("a%d: %v", i, err)
				}
			}
			if got := count.Load(); tc.want > 0 && got != tc.want {
				t.Errorf("%d library verifications, want %d", got, tc.want)
			}
		})
	}
}

// A signature another attestor is verifying at the moment is tried last:
// first the others, then it (the order decides nothing).
func TestSignaturesBeingVerifiedAreTriedLast(t *testing.T) {
	keys := ecKeys(t, 2)
	for _, tc := range []struct {
		name     string
		attestor int // whose key: signature 0 is keys[0]'s, 1 is keys[1]'s
		want     int64
	}{
		{"its own signature is free", 1, 1},
		{"its own signature is busy", 0, 2},
	} {
		for _, format := range []string{"legacy", "bundle"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				s := signedBy(t, format, keys...)
				var count atomic.Int64
				_, vs := keyAttestors(t, keys, &count)
				owners := s.legacyOwners
				if format == "bundle" {
					owners = s.bundleOwners
				}
				owners[0].trying.Add(1) // another attestor is verifying signature 0
				if err := vs[tc.attestor].verify(fuzzDigest, s, 0); err != nil {
					t.Fatal(err)
				}
				if got := count.Load(); got != tc.want {
					t.Errorf("%d library verifications, want %d", got, tc.want)
				}
			})
		}
	}
}

func TestPick(t *testing.T) {
	for _, tc := range []struct {
		name  string
		busy  []int
		tried []int
		rank  []uint8
		start int
		want  int
	}{
		{"from start", nil, nil, nil, 2, 2},
		{"round", nil, []int{2, 3}, nil, 2, 0},
		{"busy skipped", []int{2}, nil, nil, 2, 3},
		{"busy last", []int{0, 1, 2}, []int{3}, nil, 2, 2},
		{"all tried", nil, []int{0, 1, 2, 3}, nil, 1, -1},
		{"lowest rank", nil, nil, []uint8{2, 1, 2, 0}, 0, 3},
		{"lowest rank, busy", []int{3}, nil, []uint8{2, 1, 2, 0}, 0, 3},
		{"rank before start", nil, []int{1}, []uint8{1, 0, 2, 2}, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owners, tried := make([]owner, 4), make([]bool, 4)
			for _, i := range tc.busy {
				owners[i].trying.Add(1)
			}
			for _, i := range tc.tried {
				tried[i] = true
			}
			if got := pick(owners, tc.rank, tried, tc.start); got != tc.want {
				t.Errorf("pick = %d, want %d", got, tc.want)
			}
		})
	}
}

// keyHint names a key as cosign does in a bundle.
func keyHint(t *testing.T, k crypto.Signer) string {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// signedBy is fuzzDigest signed by each key in turn, as .sig layers or as
// Sigstore bundles (naming no key, their key or the next one).
func signedBy(t *testing.T, format string, keys ...crypto.Signer) *signatures {
	t.Helper()
	s := &signatures{}
	p := at.Payload("registry.example.com/app", fuzzDigest)
	c := &sharedClaims{payload: p}
	for i, k := range keys {
		if format == "legacy" {
			l := newLegacySig(map[string]string{annotationSignature: at.SignWith(t, k, p)}, p)
			l.claims = c
			s.legacy = append(s.legacy, l)
			continue
		}
		var extra map[string]any
		switch format {
		case "bundle naming its key":
			extra = map[string]any{"publicKey": map[string]string{"hint": keyHint(t, k)}}
		case "bundle naming another key":
			extra = map[string]any{"publicKey": map[string]string{"hint": keyHint(t, keys[(i+1)%len(keys)])}}
		}
		b, err := parseBundle(at.Bundle(t, k, at.Statement(fuzzDigest, at.SignPredicateType), extra))
		if err != nil {
			t.Fatal(err)
		}
		s.bundles = append(s.bundles, b)
	}
	s.legacyOwners, s.bundleOwners = make([]owner, len(s.legacy)), make([]owner, len(s.bundles))
	return s
}
