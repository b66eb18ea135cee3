package rego

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/workload"
)

// The attack: distinct pods naming images with thousands of findings, or
// references of hundreds of kilobytes, would fill 4,096-entry caches with
// gigabytes. The caches' byte bounds hold instead.
func TestCachesBoundedInBytes(t *testing.T) {
	e := testEngine(t, `
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: s1}
spec: {strategyId: 1, ruleAction: 1, alarmDetail: {vul: {riskLevel: [high]}}}
`)
	scan := &facts.Scan{ScannedAt: time.Now()}
	for j := range 2000 {
		scan.Findings = append(scan.Findings, facts.Finding{Category: facts.Vul, ID: fmt.Sprintf("CVE-2024-%05d", j), Level: "low", Name: "package"})
	}
	for _, c := range []struct {
		name string
		ref  func(i int) string
		f    *facts.Image
	}{
		{"many findings", func(i int) string { return fmt.Sprintf("registry.example.com/app%d:1", i) }, &facts.Image{Scan: scan}},
		{"long references", func(i int) string { return fmt.Sprintf("registry.example.com/%d/%s", i, strings.Repeat("a", 100<<10)) }, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i := range 400 {
				in := Input{Namespace: "ns", Images: []workload.Image{workload.ParseImage(c.ref(i))}, Facts: []*facts.Image{c.f}}
				if _, err := e.Eval(context.Background(), in); err != nil {
					t.Fatal(err)
				}
				if e.cache.bytes > e.cache.maxBytes || e.images.bytes > maxImageValueBytes {
					t.Fatalf("after %d: decisions %d bytes (bound %d), image values %d (bound %d)", i+1, e.cache.bytes, e.cache.maxBytes, e.images.bytes, maxImageValueBytes)
				}
			}
			if e.cache.ll.Len() == 0 {
				t.Error("nothing cached: the bound proves nothing")
			}
		})
	}
}
