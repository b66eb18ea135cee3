package kube

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

func reviewFor(t *testing.T, op admissionv1.Operation, objYAML string) []byte {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(objYAML))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(admissionv1.AdmissionReview{Request: &admissionv1.AdmissionRequest{
		UID: "u-1", Operation: op, Object: runtime.RawExtension{Raw: raw},
	}})
	return b
}

const strategyYAML = `apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: s1, uid: abc, generation: 2, managedFields: [{manager: kubectl}]}
spec: {strategyId: 5, ruleAction: 2, imageName: ["%s"]}
`

const policyYAML = `apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: p1}
spec: {policy: {requiredAttestors: [known, missing]}, clusters: [{clusterId: c}]}
`

func TestValidationHandler(t *testing.T) {
	srv := httptest.NewServer(&ValidationHandler{Attestors: func(n string) bool { return n == "known" }})
	defer srv.Close()
	tests := []struct {
		name        string
		op          admissionv1.Operation
		obj         string
		allowed     bool
		wantMsg     string
		wantWarning string
	}{
		{"valid strategy", admissionv1.Create, strings.Replace(strategyYAML, "%s", "app-*", 1), true, "", ""},
		{"bad glob", admissionv1.Update, strings.Replace(strategyYAML, "%s", "[", 1), false, "OpaStrategy s1: spec.imageName[0]", ""},
		{"unknown field", admissionv1.Create, strings.Replace(strategyYAML, "ruleAction: 2", "ruleAction: 2, colour: red", 1), false, "spec.colour: unknown field", ""},
		{"wrong kind", admissionv1.Create, "apiVersion: imagegate.dev/v1alpha1\nkind: Nope\nmetadata: {name: x}\n", false, "unknown kind \"Nope\"", ""},
		{"policy with unknown attestor is allowed with a warning", admissionv1.Create, policyYAML, true, "", `no Attestor "missing" exists yet`},
		{"no object", admissionv1.Create, "null", false, "expected exactly one object, found 0", ""},
		{"delete always allowed", admissionv1.Delete, "{}", true, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := http.Post(srv.URL+ValidationPath, "application/json", bytes.NewReader(reviewFor(t, tc.op, tc.obj)))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var out admissionv1.AdmissionReview
			if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
				t.Fatal(err)
			}
			r := out.Response
			if r == nil || r.UID != "u-1" || r.Allowed != tc.allowed {
				t.Fatalf("response %+v, want allowed=%v uid u-1", r, tc.allowed)
			}
			if tc.wantMsg != "" && (r.Result == nil || !strings.Contains(r.Result.Message, tc.wantMsg)) {
				t.Fatalf("result %+v, want message containing %q", r.Result, tc.wantMsg)
			}
			if tc.wantWarning != "" && (len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], tc.wantWarning)) {
				t.Fatalf("warnings %q, want one containing %q", r.Warnings, tc.wantWarning)
			}
		})
	}
	t.Run("not a review", func(t *testing.T) {
		res, err := http.Post(srv.URL+ValidationPath, "application/json", strings.NewReader("[]"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", res.StatusCode)
		}
	})
}
