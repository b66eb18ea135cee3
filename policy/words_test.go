package policy_test

import (
	"strings"
	"testing"

	"github.com/imagegate/imagegate/policy"
)

// ruleAction and allNamespace read as words or as the management API's
// numbers, and decode to the same numbers either way.
func TestWordForms(t *testing.T) {
	for _, tc := range []struct {
		action, all string
		wantAction  int
		wantAll     int
	}{
		{"alert", "true", policy.ActionAlert, 1},
		{"block", "false", policy.ActionBlock, 0},
		{"allow", "true", policy.ActionAllow, 1},
		{"Block", "True", policy.ActionBlock, 1},
		{"1", "1", policy.ActionAlert, 1},
		{"2", "0", policy.ActionBlock, 0},
		{"3", "1", policy.ActionAllow, 1},
	} {
		doc := strategyHead + "  strategyId: 7\n  ruleAction: " + tc.action + "\n  scopes:\n  - {clusterId: c1, allNamespace: " + tc.all + ", namespaceList: [a]}\n"
		objs, err := policy.Parse("s.yaml", []byte(doc))
		if err != nil {
			t.Fatalf("%s/%s: %v", tc.action, tc.all, err)
		}
		if _, err := policy.NewSnapshot(objs...); err != nil {
			t.Fatalf("%s/%s: %v", tc.action, tc.all, err)
		}
		s := objs[0].(*policy.OpaStrategy)
		if s.Spec.RuleAction != tc.wantAction || s.Spec.Scopes[0].AllNamespace != tc.wantAll {
			t.Errorf("%s/%s: decoded ruleAction %d allNamespace %d, want %d %d", tc.action, tc.all,
				s.Spec.RuleAction, s.Spec.Scopes[0].AllNamespace, tc.wantAction, tc.wantAll)
		}
	}
}

// The same document as JSON (what the API server hands a custom resource
// over as) reads the same.
func TestWordFormsJSON(t *testing.T) {
	doc := `{"apiVersion":"imagegate.dev/v1alpha1","kind":"OpaStrategy","metadata":{"name":"s"},` +
		`"spec":{"strategyId":3,"ruleAction":"allow","scopes":[{"clusterId":"c1","allNamespace":true}]}}`
	objs, err := policy.Parse("", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	s := objs[0].(*policy.OpaStrategy)
	if s.Spec.RuleAction != policy.ActionAllow || s.Spec.Scopes[0].AllNamespace != 1 {
		t.Errorf("decoded %+v", s.Spec)
	}
}

// A wrong value names the field, its line and the accepted values.
func TestWordFormErrors(t *testing.T) {
	for _, tc := range []struct{ action, all, want string }{
		{"deny", "true", `s.yaml:6: OpaStrategy s1: spec.ruleAction: expected one of alert, block, allow (or 1, 2, 3), got the string "deny"`},
		{"[block]", "true", `spec.ruleAction: expected one of alert, block, allow (or 1, 2, 3), got a list`},
		{`"2"`, "true", `spec.ruleAction: expected one of alert, block, allow (or 1, 2, 3), got the string "2"`},
		{"7", "true", `spec.ruleAction: 7 is not one of alert, block, allow (or 1, 2, 3)`},
		{"block", "yes", `spec.scopes[0].allNamespace: expected one of true, false (or 1, 0), got the string "yes"`},
		{"block", "2", `spec.scopes[0].allNamespace: 2 is not one of true, false (or 1, 0)`},
	} {
		doc := strategyHead + "  strategyId: 7\n  ruleAction: " + tc.action + "\n  scopes:\n  - {clusterId: c1, allNamespace: " + tc.all + "}\n"
		objs, err := policy.Parse("s.yaml", []byte(doc))
		if err == nil {
			_, err = policy.NewSnapshot(objs...)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ruleAction %s allNamespace %s: error %v, want %q", tc.action, tc.all, err, tc.want)
		}
	}
}

func TestActionName(t *testing.T) {
	if policy.ActionName(1) != "alert" || policy.ActionName(2) != "block" || policy.ActionName(3) != "allow" || policy.ActionName(9) != "" {
		t.Error("ActionName")
	}
}

// images and mode of a BinarySecurityPolicy: globs checked like imageName,
// mode one of enforce, warn.
func TestPolicyImagesAndMode(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"  images: [\"registry.example.com/*\", app]\n  mode: warn\n", ""},
		{"  mode: enforce\n", ""},
		{"  mode: audit\n", `spec.mode: "audit" is not one of enforce, warn`},
		{"  images: [\"[\"]\n", `spec.images[0]: pattern "[": unterminated [`},
		{"  images: [\" \"]\n", `spec.images[0]: must not be empty`},
	} {
		doc := wordsAttestor + "---\n" + policyHead + "  policy: {requiredAttestors: [ci]}\n  clusters: [{clusterId: c1}]\n" + tc.spec
		objs, err := policy.Parse("p.yaml", []byte(doc))
		if err == nil {
			_, err = policy.NewSnapshot(objs...)
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.spec, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want %q", tc.spec, err, tc.want)
		}
	}
}

const wordsAttestor = `apiVersion: imagegate.dev/v1alpha1
kind: Attestor
metadata: {name: ci}
spec:
  publicKeys:
  - |
    -----BEGIN PUBLIC KEY-----
    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE17L1CDixpC6Umq7sna4KFil3Hd2i
    Vwa/O2oifOFPIoRfQXLnmx0Zky5fhVSiU/lkeX+0ojts/CFlxIp7EYr+xw==
    -----END PUBLIC KEY-----
`
