package rego_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
)

// BenchmarkEval measures a full evaluation (the decision cache is off): the
// cost of a pod imagegate has not seen before.
func BenchmarkEval(b *testing.B) { benchEval(b, 0) }

// BenchmarkEvalCached measures a repeated pod (ReplicaSet scale-up, rollout,
// Job): same namespace, labels, images and facts.
func BenchmarkEvalCached(b *testing.B) { benchEval(b, rego.DefaultDecisionCacheSize) }

func benchEval(b *testing.B, cacheSize int) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("strategies=%d", n), func(b *testing.B) {
			snap, err := policy.NewSnapshot(rego.BenchStrategies(n)...)
			if err != nil {
				b.Fatal(err)
			}
			e, err := rego.New(context.Background(), snap, rego.WithClusterID("c1"), rego.WithDecisionCache(cacheSize))
			if err != nil {
				b.Fatal(err)
			}
			in := rego.BenchInput()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.Eval(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCompile is what a policy change costs: paid once per snapshot,
// never per request (compare with BenchmarkEval).
func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("strategies=%d", n), func(b *testing.B) {
			snap, err := policy.NewSnapshot(rego.BenchStrategies(n)...)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := rego.New(context.Background(), snap, rego.WithClusterID("c1")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
