package policy_test

import (
	"strings"
	"testing"

	"github.com/imagegate/imagegate/policy"
)

func TestValidateOneObject(t *testing.T) {
	tests := []struct {
		name string
		obj  policy.Object
		want string // substring of the error; empty: valid
	}{
		{"valid strategy", &policy.OpaStrategy{Metadata: policy.ObjectMeta{Name: "s"}, Spec: policy.OpaStrategySpec{StrategyID: 1, RuleAction: 2}}, ""},
		{"bad action", &policy.OpaStrategy{Metadata: policy.ObjectMeta{Name: "s"}, Spec: policy.OpaStrategySpec{StrategyID: 1, RuleAction: 7}}, "OpaStrategy s: spec.ruleAction: 7 is not one of"},
		{"bad glob", &policy.OpaStrategy{Metadata: policy.ObjectMeta{Name: "s"}, Spec: policy.OpaStrategySpec{StrategyID: 1, RuleAction: 2, ImageName: []string{"["}}}, "spec.imageName[0]"},
		// unknown attestors are a set rule: one policy on its own is valid.
		{"policy naming an unknown attestor", &policy.BinarySecurityPolicy{Metadata: policy.ObjectMeta{Name: "p"}, Spec: policy.BinarySecurityPolicySpec{
			Policy: policy.SignaturePolicy{RequiredAttestors: []string{"nobody"}}, Clusters: []policy.ClusterScope{{ClusterID: "c"}}}}, ""},
		{"attestor without keys", &policy.Attestor{Metadata: policy.ObjectMeta{Name: "a"}}, "Attestor a: spec: needs publicKeys or keyless"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := policy.Validate(tc.obj)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
