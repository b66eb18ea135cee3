package kube

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// fromYAML is one object as the API server would return it.
func fromYAML(t testing.TB, doc string) *unstructured.Unstructured {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		t.Fatal(err)
	}
	return u
}

func items(t testing.TB, docs ...string) []*item {
	t.Helper()
	byKind := map[string]Resource{}
	for _, r := range Resources() {
		byKind[r.Kind] = r
	}
	var out []*item
	for _, d := range docs {
		u := fromYAML(t, d)
		out = append(out, decodeItem(byKind[u.GetKind()], u))
	}
	return out
}

func attestorYAML(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	pemKey, _ := json.Marshal(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	return `apiVersion: imagegate.dev/v1alpha1
kind: Attestor
metadata: {name: known, generation: 1}
spec: {transparencyLog: optional, publicKeys: [` + string(pemKey) + `]}
status: {conditions: []}
`
}

func TestBuildSnapshot(t *testing.T) {
	ok := strings.Replace(strategyYAML, "%s", "app-*", 1)
	tests := []struct {
		name       string
		docs       []string
		wantErr    bool
		conditions map[string][2]string // object name -> Accepted status, reason
	}{
		{"valid set", []string{attestorYAML(t), ok}, false,
			map[string][2]string{"known": {"True", "Loaded"}, "s1": {"True", "Loaded"}}},
		{"unknown attestor rejects the set", []string{attestorYAML(t), ok, policyYAML}, true,
			map[string][2]string{"p1": {"False", "UnknownAttestor"}, "s1": {"False", "SetRejected"}}},
		{"invalid field", []string{strings.Replace(strategyYAML, "%s", "[", 1)}, true,
			map[string][2]string{"s1": {"False", "InvalidField"}}},
		{"duplicate strategy id", []string{ok, strings.Replace(ok, "name: s1", "name: s2", 1)}, true,
			map[string][2]string{"s2": {"False", "DuplicateStrategyId"}}},
		{"empty set loads", nil, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			its := items(t, tc.docs...)
			snap, err := buildSnapshot(its)
			if (err != nil) != tc.wantErr || (err == nil && snap == nil) {
				t.Fatalf("snapshot %v, error %v; want error %v", snap, err, tc.wantErr)
			}
			var se *SetError
			if err != nil && !errors.As(err, &se) {
				t.Fatalf("error %T, want *SetError", err)
			}
			for _, it := range its {
				want, ok := tc.conditions[it.u.GetName()]
				if !ok {
					continue
				}
				cs := it.conditions(err)
				if cs[0].Type != ConditionAccepted || cs[0].Status != want[0] || cs[0].Reason != want[1] {
					t.Errorf("%s: Accepted condition %+v, want %v", it.u.GetName(), cs[0], want)
				}
				if want[1] == "UnknownAttestor" && (cs[1].Status != "True" || !strings.Contains(cs[1].Message, `spec.policy.requiredAttestors[1]: unknown attestor "missing"`)) {
					t.Errorf("Invalid condition %+v", cs[1])
				}
			}
		})
	}
}

func TestSameConditions(t *testing.T) {
	it := items(t, attestorYAML(t))[0]
	want := it.conditions(nil)
	if sameConditions(currentConditions(it.u), it.u.GetGeneration(), want) {
		t.Fatal("an object without conditions has the wanted ones")
	}
	var list []any
	for _, c := range want {
		list = append(list, map[string]any{"type": c.Type, "status": c.Status, "reason": c.Reason, "message": c.Message, "observedGeneration": int64(1)})
	}
	_ = unstructured.SetNestedSlice(it.u.Object, list, "status", "conditions")
	if !sameConditions(currentConditions(it.u), it.u.GetGeneration(), want) {
		t.Fatal("written conditions not recognised: status would be rewritten on every event")
	}
}

// The API server stores one JSON object per resource, so the decoder seeing
// none or several cannot come from a cluster; the item must still carry an
// error, or it would vanish from the snapshot without a word.
func TestDecodeDataCountsObjects(t *testing.T) {
	ok := strings.Replace(strategyYAML, "%s", "app-*", 1)
	tests := []struct {
		name    string
		data    string
		wantErr string
	}{
		{"one object", ok, ""},
		{"no document", "", "expected exactly one object, found 0"},
		{"null document", "null\n", "expected exactly one object, found 0"},
		{"two documents", ok + "---\n" + strings.Replace(ok, "name: s1", "name: s2", 1), "expected exactly one object, found 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			u.SetName("s1")
			it := decodeData(Resources()[2], u, []byte(tc.data))
			if tc.wantErr == "" {
				if it.obj == nil || len(it.errs) != 0 || it.kind != "" {
					t.Fatalf("item obj %v errs %q kind %q, want a decoded object", it.obj, it.errs, it.kind)
				}
				return
			}
			if it.obj != nil || it.kind != "InvalidField" || len(it.errs) != 1 || it.errs[0] != tc.wantErr {
				t.Fatalf("item obj %v errs %q kind %q, want InvalidField %q", it.obj, it.errs, it.kind, tc.wantErr)
			}
			_, err := buildSnapshot([]*item{it})
			var se *SetError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("snapshot error %v, want a *SetError naming %q", err, tc.wantErr)
			}
		})
	}
}
