package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/test/e2e/harness"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDeployCRDWordForms has the real API server check the committed CRDs'
// schema for ruleAction and allNamespace: the words and the management
// API's numbers are stored as written, anything else is refused with the
// field and its accepted values.
func TestDeployCRDWordForms(t *testing.T) {
	cluster := harness.SharedCluster(t)
	dyn := cluster.ApplyPolicies(t)
	strategies := dyn.Resource(harness.OpaStrategies)
	ctx := context.Background()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}
	doc := func(action, all string) string {
		return "apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {name: words}\nspec:\n  strategyId: 4242\n" +
			"  ruleAction: " + action + "\n  scopes: [{clusterId: c1, allNamespace: " + all + "}]\n"
	}
	for _, tc := range []struct{ action, all, refused string }{
		{"block", "true", ""},
		{"alert", "false", ""},
		{"allow", "true", ""},
		{"2", "1", ""},
		{"3", "0", ""},
		{"deny", "true", `spec.ruleAction: Unsupported value: "deny"`},
		{"7", "true", `spec.ruleAction: Unsupported value: 7`},
		{"block", `"yes"`, `spec.scopes[0].allNamespace: Unsupported value: "yes"`},
		{"block", "2", `spec.scopes[0].allNamespace: Unsupported value: 2`},
	} {
		u, err := strategies.Create(ctx, harness.DecodeYAML(t, doc(tc.action, tc.all)), dry)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("ruleAction %s allNamespace %s refused: %v", tc.action, tc.all, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("ruleAction %s allNamespace %s: error %v, want %q", tc.action, tc.all, err, tc.refused)
		case err == nil:
			spec := u.Object["spec"].(map[string]any)
			t.Logf("stored ruleAction %v allNamespace %v", spec["ruleAction"], spec["scopes"].([]any)[0].(map[string]any)["allNamespace"])
		}
	}
}
