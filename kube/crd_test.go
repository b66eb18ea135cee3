package kube

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// jsonPaths lists every JSON field path reachable from t ("a.b[].c").
func jsonPaths(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			prefix += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		p := prefix + "." + name
		out[p] = true
		jsonPaths(t.Field(i).Type, p, out)
	}
}

// schemaPaths lists every property path of a schema, and the ones without a
// description.
func schemaPaths(s map[string]any, prefix string, out, undocumented map[string]bool) {
	if items, ok := s["items"].(map[string]any); ok {
		schemaPaths(items, prefix+"[]", out, undocumented)
	}
	props, _ := s["properties"].(map[string]any)
	for name, v := range props {
		p := prefix + "." + name
		out[p] = true
		sub := v.(map[string]any)
		if d, _ := sub["description"].(string); d == "" {
			undocumented[p] = true
		}
		schemaPaths(sub, p, out, undocumented)
	}
}

func specSchema(t *testing.T, r Resource) map[string]any {
	t.Helper()
	crd, err := r.crd()
	if err != nil {
		t.Fatal(err)
	}
	v := crd["spec"].(map[string]any)["versions"].([]any)[0].(map[string]any)
	root := v["schema"].(map[string]any)["openAPIV3Schema"].(map[string]any)
	return root["properties"].(map[string]any)["spec"].(map[string]any)
}

func TestSchemaCoversEveryField(t *testing.T) {
	for _, r := range Resources() {
		t.Run(r.Kind, func(t *testing.T) {
			want := map[string]bool{}
			jsonPaths(r.spec, "spec", want)
			got, undocumented := map[string]bool{}, map[string]bool{}
			schemaPaths(specSchema(t, r), "spec", got, undocumented)
			if !reflect.DeepEqual(want, got) {
				t.Errorf("schema paths differ from Go fields:\nmissing %v\nextra %v", diff(want, got), diff(got, want))
			}
			if len(undocumented) > 0 {
				t.Errorf("fields without a description: %v", keys(undocumented))
			}
		})
	}
}

func TestNoStaleFieldDocs(t *testing.T) {
	used := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || used[t.Name()] {
			return
		}
		used[t.Name()] = true
		for i := 0; i < t.NumField(); i++ {
			used[t.Name()+"."+t.Field(i).Name] = true
			walk(t.Field(i).Type)
		}
	}
	for _, r := range Resources() {
		walk(r.spec)
	}
	for k := range fields() {
		if !used[k] {
			t.Errorf("fields() documents %s, which no policy type has", k)
		}
	}
}

func TestSchemaConstraints(t *testing.T) {
	byKind := map[string]map[string]any{}
	for _, r := range Resources() {
		byKind[r.Kind] = specSchema(t, r)
	}
	at := func(s map[string]any, path ...string) map[string]any {
		for _, p := range path {
			if p == "[]" {
				s = s["items"].(map[string]any)
				continue
			}
			s = s["properties"].(map[string]any)[p].(map[string]any)
		}
		return s
	}
	tests := []struct {
		name, kind string
		path       []string
		key        string
		want       any
	}{
		{"ruleAction enum", "OpaStrategy", []string{"ruleAction"}, "enum", []any{"alert", "block", "allow", 1, 2, 3}},
		{"ruleAction int or string", "OpaStrategy", []string{"ruleAction"}, "x-kubernetes-int-or-string", true},
		{"riskLevel item enum", "OpaStrategy", []string{"alarmDetail", "vul", "riskLevel", "[]"}, "enum", []any{"high", "medium", "low"}},
		{"riskClass id enum", "OpaStrategy", []string{"alarmDetail", "vul", "riskClass", "[]", "id"}, "enum", []any{"cve", "app"}},
		{"item id free elsewhere", "OpaStrategy", []string{"alarmDetail", "vul", "item", "[]", "id"}, "enum", nil},
		{"allNamespace enum", "OpaStrategy", []string{"scopes", "[]", "allNamespace"}, "enum", []any{true, false, 1, 0}},
		{"allNamespace any scalar", "OpaStrategy", []string{"scopes", "[]", "allNamespace"}, "type", nil},
		{"strategyId minimum", "OpaStrategy", []string{"strategyId"}, "minimum", int64(1)},
		{"status default", "BinarySecurityPolicy", []string{"status"}, "default", "enabled"},
		{"policyMode default", "BinarySecurityPolicy", []string{"policy", "policyMode"}, "default", "requireAttestor"},
		{"requiredAttestors minItems", "BinarySecurityPolicy", []string{"policy", "requiredAttestors"}, "minItems", 1},
		{"transparencyLog default", "Attestor", []string{"transparencyLog"}, "default", "optional"},
		{"transparencyLog enum", "Attestor", []string{"transparencyLog"}, "enum", []any{"required", "optional", "ignore"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := at(byKind[tc.kind], tc.path...)[tc.key]
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s %v %s = %#v, want %#v", tc.kind, tc.path, tc.key, got, tc.want)
			}
		})
	}
	if req := byKind["OpaStrategy"]["required"]; !reflect.DeepEqual(req, []any{"strategyId", "ruleAction"}) {
		t.Errorf("OpaStrategy spec required = %v", req)
	}
}

// TestCommittedCRDs fails when deploy/crds or the Helm chart's crds/ is out
// of date with the Go types: run make generate.
func TestCommittedCRDs(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"../deploy/crds", "../deploy/helm/imagegate/crds"} {
		for name, want := range crds {
			t.Run(filepath.Join(dir, name), func(t *testing.T) {
				got, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatalf("%v (run make generate)", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s/%s is out of date: run make generate", dir, name)
				}
				var obj map[string]any
				if err := yaml.Unmarshal(got, &obj); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func diff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func keys(m map[string]bool) []string { return diff(m, nil) }
