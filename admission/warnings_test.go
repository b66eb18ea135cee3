package admission_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/policy"
)

func TestSnapshotWarnings(t *testing.T) {
	load := func(t *testing.T, doc string) *policy.Snapshot {
		t.Helper()
		objs, err := policy.Parse("p.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		snap, err := policy.NewSnapshot(objs...)
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	// Strategy 2's clusterId is ignored: it has scopes.
	strategies := `apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: a}
spec: {strategyId: 1, clusterId: c1, ruleAction: 1, imageName: ["x"]}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: b}
spec: {strategyId: 2, clusterId: ignored, ruleAction: 1, imageName: ["x"], scopes: [{clusterId: c2, allNamespace: 1}]}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: c}
spec: {strategyId: 3, ruleAction: 1, imageName: ["x"]}
`
	snap := load(t, strategies)
	if got := admission.ClusterIDs(snap); !slices.Equal(got, []string{"c1", "c2"}) {
		t.Errorf("cluster ids %q, want [c1 c2]", got)
	}
	empty := load(t, "")
	cases := []struct {
		name    string
		snap    *policy.Snapshot
		cluster string
		want    string // "" : no warning
	}{
		{"named by clusterId", snap, "c1", ""},
		{"named by a scope", snap, "c2", ""},
		{"every cluster", snap, "", ""},
		{"clusterId of a scoped strategy", snap, "ignored", `cluster id "ignored" is named by no BinarySecurityPolicy or OpaStrategy (they name "c1", "c2")`},
		{"typo", snap, "c3", `cluster id "c3"`},
		{"empty", empty, "c1", "no Attestor, BinarySecurityPolicy or OpaStrategy was found"},
		{"empty, every cluster", empty, "", "every image is allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := admission.SnapshotWarnings(c.snap, c.cluster)
			switch {
			case c.want == "" && len(got) != 0:
				t.Errorf("warnings %q, want none", got)
			case c.want != "" && (len(got) != 1 || !strings.Contains(got[0], c.want)):
				t.Errorf("warnings %q, want one with %q", got, c.want)
			}
		})
	}
}
