package api

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/policy"
)

// TestFileNamesAreInjective: names that used to share a file get distinct,
// visible files of a length every file system takes.
func TestFileNamesAreInjective(t *testing.T) {
	bsp, opa := policy.KindBinarySecurityPolicy, policy.KindOpaStrategy
	long := strings.Repeat("x", policy.MaxNameLen-1)
	cases := []struct {
		name string
		a, b Ref
	}{
		{"colon and underscore", Ref{bsp, "prod:signed"}, Ref{bsp, "prod_signed"}},
		{"dot and dot dot", Ref{bsp, "."}, Ref{bsp, ".."}},
		{"leading dot", Ref{bsp, "ns1"}, Ref{bsp, ".ns1"}},
		{"escape lookalike", Ref{bsp, "a:b"}, Ref{bsp, "a_3ab"}},
		{"generated strategy name and digits", Ref{opa, "opastrategy-7"}, Ref{opa, "7"}},
		{"doubled prefix", Ref{opa, "opastrategy-7"}, Ref{opa, "opastrategy-opastrategy-7"}},
		{"long names differing at the end", Ref{bsp, long + "a"}, Ref{bsp, long + "b"}},
		{"long escaped names", Ref{bsp, strings.Repeat(":", 127) + "a"}, Ref{bsp, strings.Repeat(":", 127) + "b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fa, fb := fileName(c.a), fileName(c.b)
			if fa == fb {
				t.Fatalf("%q and %q share the file %s", c.a.Name, c.b.Name, fa)
			}
			for _, f := range []string{fa, fb} {
				if strings.HasPrefix(f, ".") || strings.ContainsAny(f, "/\\:") || len(f) > 255 || !strings.HasSuffix(f, ".yaml") {
					t.Errorf("file name %q", f)
				}
			}
		})
	}
	if got := fileName(Ref{opa, "opastrategy-12"}); got != "opastrategy-12.yaml" {
		t.Errorf("strategy created through the API: %s, want opastrategy-12.yaml", got)
	}
	if got := fileName(Ref{policy.KindAttestor, "ci-attestor"}); got != "attestor-ci-attestor.yaml" {
		t.Errorf("plain name: %s, want attestor-ci-attestor.yaml", got)
	}
}

// TestNameCollisionsDoNotReplaceObjects: a caller allowed only on dev
// clusters creates objects whose names used to map to the file of a
// production policy; the production policy stays as it was.
func TestNameCollisionsDoNotReplaceObjects(t *testing.T) {
	e := newEnv(t)
	const admin = "admin-token"
	doc := `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:*"],"Resource":["*"],"Condition":{"StringStartWith":{"imagegate:ClusterId":["dev-"]}}}]}`
	st, body := e.rest(admin, "POST", "/v3.0/OS-ROLE/roles", role("DevWriter", doc))
	expectREST(t, st, body, 201, "")
	st, body = e.rest(admin, "PUT", "/v3.0/OS-ROLE/groups/security/roles/"+body["role"].(map[string]any)["id"].(string), nil)
	expectREST(t, st, body, 204, "")
	st, body = e.rpc(admin, "CreateAttestor", "Name", "ci", "PublicKeys", jsonString([]string{e.pubKey}))
	expect(t, st, body, 200, "")

	create := func(token, name, cluster string) (int, map[string]any) {
		return e.rpc(token, "CreateBinarySecurityPolicy", "Name", name, "Policy", `{"RequiredAttestors":["ci"]}`, "Clusters", `[{"ClusterId":"`+cluster+`"}]`)
	}
	clusterOf := func(t *testing.T, name string) string {
		t.Helper()
		snap, err := e.h.store.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if p := findBSP(snap, name); p != nil && len(p.Spec.Clusters) == 1 {
			return p.Spec.Clusters[0].ClusterID
		}
		return ""
	}
	for _, pair := range [][2]string{{"prod:signed", "prod_signed"}, {".", ".."}, {".ns1", "ns1"}} {
		t.Run(pair[0]+" then "+pair[1], func(t *testing.T) {
			st, body := create(admin, pair[0], "prod-1")
			expect(t, st, body, 200, "")
			st, body = create("alice-token", pair[1], "dev-1")
			expect(t, st, body, 200, "")
			if got := clusterOf(t, pair[0]); got != "prod-1" {
				t.Errorf("production policy %q: cluster %q after %q was created", pair[0], got, pair[1])
			}
			if got := clusterOf(t, pair[1]); got != "dev-1" {
				t.Errorf("dev policy %q: cluster %q", pair[1], got)
			}
		})
	}

	// A file written by hand (or by an earlier version) under the name the
	// new object would get holds another object: the create is refused
	// and nothing changes.
	t.Run("file of another object", func(t *testing.T) {
		prod := "apiVersion: imagegate.dev/v1alpha1\nkind: BinarySecurityPolicy\nmetadata: {name: \"prod:legacy\"}\n" +
			"spec: {name: \"prod:legacy\", policy: {requiredAttestors: [ci]}, clusters: [{clusterId: prod-1}]}\n"
		if err := os.WriteFile(filepath.Join(e.dir, fileName(Ref{policy.KindBinarySecurityPolicy, "prod_legacy"})), []byte(prod), 0o644); err != nil {
			t.Fatal(err)
		}
		before := dirState(t, e.dir)
		st, body := create("alice-token", "prod_legacy", "dev-1")
		expect(t, st, body, 409, "Conflict.FileExists")
		if after := dirState(t, e.dir); !reflect.DeepEqual(before, after) {
			t.Error("a refused create changed the directory")
		}
		if got := clusterOf(t, "prod:legacy"); got != "prod-1" {
			t.Errorf("prod:legacy: cluster %q", got)
		}
	})
}

// TestGeneratedStrategyNameTaken: a hand-written strategy named like the
// next generated one (opastrategy-<id>) is not replaced by a create; the
// new strategy takes the next free id.
func TestGeneratedStrategyNameTaken(t *testing.T) {
	e := newEnv(t)
	doc := "apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {name: opastrategy-2}\nspec: {strategyId: 1, clusterId: prod-1, ruleAction: 2}\n"
	if err := os.WriteFile(filepath.Join(e.dir, "prod.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	st, body := e.rpc("admin-token", "CreateOpaStrategyNew", "StrategyName", "dev", "RuleAction", "3", "ClusterId", "dev-1")
	expect(t, st, body, 200, "")
	if id := body["Data"].(map[string]any)["StrategyId"]; id != float64(3) {
		t.Errorf("StrategyId %v, want 3 (opastrategy-2 is taken)", id)
	}
	snap, err := e.h.store.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if s := findOpa(snap, 1); s == nil || s.Spec.RuleAction != 2 || s.Spec.ClusterID != "prod-1" {
		t.Errorf("the hand-written strategy changed: %+v", s)
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "prod.yaml")); string(b) != doc {
		t.Error("prod.yaml was rewritten")
	}
}

// TestStrategyFiles: strategies created through the API are written to
// opastrategy-<id>.yaml, and one in a file of the earlier doubled name is
// updated and deleted in place.
func TestStrategyFiles(t *testing.T) {
	e := newEnv(t)
	st, body := e.rpc("admin-token", "CreateOpaStrategyNew", "StrategyName", "s", "RuleAction", "2", "ClusterId", "c1")
	expect(t, st, body, 200, "")
	if files := dirState(t, e.dir); len(files) != 1 || files["opastrategy-1.yaml"] == "" {
		t.Fatalf("files %v, want opastrategy-1.yaml", keysOfFiles(files))
	}
	old := "apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {name: opastrategy-2}\nspec: {strategyId: 2, clusterId: c1, ruleAction: 1}\n"
	if err := os.WriteFile(filepath.Join(e.dir, "opastrategy-opastrategy-2.yaml"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	st, body = e.rpc("admin-token", "UpdateOpaStrategyNew", "StrategyId", "2", "RuleAction", "2")
	expect(t, st, body, 200, "")
	files := dirState(t, e.dir)
	if len(files) != 2 || !strings.Contains(files["opastrategy-opastrategy-2.yaml"], "ruleAction: 2") {
		t.Errorf("update of a strategy in an old-named file: %v", keysOfFiles(files))
	}
	st, body = e.rpc("admin-token", "DeleteOpaStrategyNew", "StrategyId", "2")
	expect(t, st, body, 200, "")
	if files := dirState(t, e.dir); len(files) != 1 {
		t.Errorf("after delete: %v", keysOfFiles(files))
	}
}

func keysOfFiles(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
