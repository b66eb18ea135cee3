package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/test/e2e/harness"
	"k8s.io/client-go/restmapper"
)

// TestExamplePoliciesApply: the README's `kubectl apply -f examples/policies/`
// — every shipped example object passes the CRD schemas with strict field
// validation (server-side dry run).
func TestExamplePoliciesApply(t *testing.T) {
	cluster := harness.SharedCluster(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dyn := cluster.ApplyPolicies(t)
	files, _ := filepath.Glob(filepath.Join(root, "examples", "policies", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no examples/policies/*.yaml")
	}
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs := splitYAML(t, data)
		n += len(objs)
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(memCache(cluster.Client(t).Discovery()))
		dryRunApply(t, dyn, mapper, objs)
	}
	if n < 3 {
		t.Fatalf("examples/policies holds %d objects, want the three kinds at least", n)
	}
	t.Logf("%d example objects accepted by the API server", n)
}
