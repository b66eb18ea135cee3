package bundle

import (
	"context"
	"testing"
)

// BenchmarkPack validates and packs the example policy set.
func BenchmarkPack(b *testing.B) {
	for b.Loop() {
		if _, err := Pack("../examples/policies"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad reads the example bundle back from an in-process registry:
// signature verification (warm: the verifier's cache), manifest and layers
// by digest, validation. What a replica pays per new digest, less the
// registry's latency.
func BenchmarkLoad(b *testing.B) {
	f := newFixture(b)
	bu, err := Pack("../examples/policies")
	if err != nil {
		b.Fatal(err)
	}
	d, err := bu.Push(context.Background(), Scheme+f.reg.Host+"/policies:bench")
	if err != nil {
		b.Fatal(err)
	}
	if err := Sign(context.Background(), d, f.signer); err != nil {
		b.Fatal(err)
	}
	src, err := NewSource(d.String(), f.attestor, f.verifier)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := src.Load(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
}
