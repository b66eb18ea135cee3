package policy_test

import (
	"strings"
	"testing"

	. "github.com/imagegate/imagegate/policy"
)

func TestValidateOneObject(t *testing.T) {
	tests := []struct {
		name string
		obj  Object
		want string // substring of the error; empty: valid
	}{
		{"valid strategy", &OpaStrategy{Metadata: ObjectMeta{Name: "s"}, Spec: OpaStrategySpec{StrategyID: 1, RuleAction: 2}}, ""},
		{"bad action", &OpaStrategy{Metadata: ObjectMeta{Name: "s"}, Spec: OpaStrategySpec{StrategyID: 1, RuleAction: 7}}, "OpaStrategy s: spec.ruleAction: 7 is not one of"},
		{"bad glob", &OpaStrategy{Metadata: ObjectMeta{Name: "s"}, Spec: OpaStrategySpec{StrategyID: 1, RuleAction: 2, ImageName: []string{"["}}}, "spec.imageName[0]"},
		// unknown attestors are a set rule: one policy on its own is valid.
		{"policy naming an unknown attestor", &BinarySecurityPolicy{Metadata: ObjectMeta{Name: "p"}, Spec: BinarySecurityPolicySpec{
			Policy: SignaturePolicy{RequiredAttestors: []string{"nobody"}}, Clusters: []ClusterScope{{ClusterID: "c"}}}}, ""},
		{"attestor without keys", &Attestor{Metadata: ObjectMeta{Name: "a"}}, "Attestor a: spec: needs publicKeys or keyless"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.obj)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
