package kube

import (
	"fmt"
	"testing"

	"github.com/imagegate/imagegate/api"
)

// BenchmarkStoreSnapshot is one management API read with n strategies in
// the cluster and none changed: three lists (here through client-go's fake,
// which deep-copies every object like a decode would cost the real client)
// and no re-decode, thanks to the uid/resourceVersion cache.
func BenchmarkStoreSnapshot(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("strategies=%d", n), func(b *testing.B) {
			s := NewStore(storeClient(b, benchStrategies(n)...))
			if _, err := s.Snapshot(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Snapshot(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStoreApply is one management API update with n strategies in
// the cluster: list, validate the whole resulting set, write one object.
// The Rego compile check (WithCheck) is not included; serve adds it.
func BenchmarkStoreApply(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("strategies=%d", n), func(b *testing.B) {
			s := NewStore(storeClient(b, benchStrategies(n)...))
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				i++
				if err := s.Apply(api.Change{Put: strategy("s0", 1, 1+i%2)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchStrategies(n int) []string {
	docs := make([]string, n)
	for i := range docs {
		docs[i] = fmt.Sprintf(`apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: s%d, uid: u%d, resourceVersion: "12"}
spec:
  strategyId: %d
  ruleAction: 2
  unScanedImage: true
  imageName: ["app-%d-*"]
  alarmDetail: {vul: {riskLevel: [high], item: [{id: CVE-2024-%d}]}}
  scopes: [{clusterId: c, allNamespace: 1}]
`, i, i, i+1, i, i)
	}
	return docs
}
