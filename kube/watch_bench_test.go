package kube

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// BenchmarkRebuild measures what one change costs the watcher before the
// engine is compiled: decoding every resource with the strict decoder,
// validating it and building the snapshot.
func BenchmarkRebuild(b *testing.B) {
	benchRebuild(b, false)
}

// BenchmarkRebuildOneChanged is the usual case: one object of many changed,
// the others' decodes come from the watcher's cache.
func BenchmarkRebuildOneChanged(b *testing.B) {
	benchRebuild(b, true)
}

func benchRebuild(b *testing.B, cached bool) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("strategies=%d", n), func(b *testing.B) {
			docs := make([]string, n)
			for i := range docs {
				docs[i] = fmt.Sprintf(`apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: s%d, uid: u%d, generation: 3, resourceVersion: "12", managedFields: [{manager: kubectl, operation: Apply}]}
spec:
  strategyId: %d
  ruleAction: 2
  unScanedImage: true
  imageName: ["app-%d-*"]
  alarmDetail: {vul: {riskLevel: [high], item: [{id: CVE-2024-%d}]}}
  scopes: [{clusterId: c, allNamespace: 1}]
status: {conditions: [{type: Accepted, status: "True", reason: Loaded, message: in force, lastTransitionTime: "2026-11-23T00:00:00Z"}]}
`, i, i, i+1, i, i)
			}
			base := items(b, docs...)
			st := &state{decoded: map[types.UID]decodedItem{}}
			for _, it := range base {
				st.decode(it.res, it.u)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				its := make([]*item, len(base))
				base[0].u.SetResourceVersion(fmt.Sprint(i + 100))
				for j, it := range base {
					if cached {
						its[j] = st.decode(it.res, it.u)
					} else {
						its[j] = decodeItem(it.res, it.u)
					}
				}
				if _, err := buildSnapshot(its); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
