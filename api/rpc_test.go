package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/policy"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, token, code string
	}{
		{"no token", "", "InvalidToken"},
		{"unknown token", "nope", "InvalidToken"},
		{"unknown session token", "igs-0011", "InvalidToken"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body := e.rpc(c.token, "DescribeAttestors")
			expect(t, st, body, 401, c.code)
		})
	}
	t.Run("X-Auth-Token works for RPC too", func(t *testing.T) {
		st, body := e.rest("admin-token", "POST", "/?Action=DescribeAttestors", "")
		expect(t, st, body, 200, "")
	})
}

func TestRPCErrors(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, token, action string
		kv                  []string
		status              int
		code                string
	}{
		{"unknown action", "admin-token", "DropEverything", nil, 404, "InvalidAction.NotFound"},
		{"missing action", "admin-token", "", nil, 400, "InvalidParameter.Action"},
		{"no permission", "bob-token", "DescribeAttestors", nil, 403, "NoPermission"},
		{"missing Name", "admin-token", "CreateAttestor", nil, 400, "InvalidParameter.Name"},
		{"malformed PublicKeys", "admin-token", "CreateAttestor", []string{"Name", "a", "PublicKeys", "[not json"}, 400, "InvalidParameter.PublicKeys.Malformed"},
		{"PublicKeys wrong shape", "admin-token", "CreateAttestor", []string{"Name", "a", "PublicKeys", `{"k":1}`}, 400, "InvalidParameter.PublicKeys.Malformed"},
		{"bad PageSize", "admin-token", "DescribeAttestors", []string{"PageSize", "1000"}, 400, "InvalidParameter.PageSize"},
		{"bad CurrentPage", "admin-token", "ListOpaClusterStrategyNew", []string{"CurrentPage", "x"}, 400, "InvalidParameter.CurrentPage"},
		{"StrategyId not a number", "admin-token", "GetOpaStrategyDetailNew", []string{"StrategyId", "abc"}, 400, "InvalidParameter.StrategyId"},
		{"strategy not found", "admin-token", "GetOpaStrategyDetailNew", []string{"StrategyId", "77"}, 404, "EntityNotExist.OpaStrategy"},
		{"strategy not found is not revealed without permission", "bob-token", "GetOpaStrategyDetailNew", []string{"StrategyId", "77"}, 403, "NoPermission"},
		{"policy not found", "admin-token", "ModifyBinarySecurityPolicy", []string{"Name", "nope", "Policy", "{}", "Clusters", "[]"}, 404, "EntityNotExist.BinarySecurityPolicy"},
		{"attestor not found", "admin-token", "DeleteAttestor", []string{"Name", "nope"}, 404, "EntityNotExist.Attestor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body := e.rpc(c.token, c.action, c.kv...)
			expect(t, st, body, c.status, c.code)
			if c.code == "NoPermission" {
				if body["Message"] != "caller has no permission" {
					t.Errorf("message %v", body["Message"])
				}
				if d, _ := body["AccessDeniedDetail"].(map[string]any); d["Reason"] != "ImplicitDeny" {
					t.Errorf("detail %v", body["AccessDeniedDetail"])
				}
			}
		})
	}
}

// TestBinarySecurityPolicyLifecycle: attestor and policy CRUD with the
// documented example's JSON strings, written through to files policy.LoadDir loads.
func TestBinarySecurityPolicyLifecycle(t *testing.T) {
	e := newEnv(t)
	const admin = "admin-token"
	keys := jsonString([]string{e.pubKey})
	st, body := e.rpc(admin, "CreateAttestor", "Name", "test-xcs-04-11-hhht", "Description", "CI", "PublicKeys", keys)
	expect(t, st, body, 200, "")
	st, body = e.rpc(admin, "CreateAttestor", "Name", "test-xcs-04-11-hhht", "PublicKeys", keys)
	expect(t, st, body, 409, "EntityAlreadyExists.Attestor")

	examplePolicy := `{"PolicyMode":"requireAttestor","RequiredAttestors":["test-xcs-04-11-hhht"]}`
	exampleClusters := `[{"Namespaces":["default"],"ClusterId":"c9f5b93a8da8f4341b77"},{"Namespaces":["default"],"ClusterId":"cc12429dbb8f644f690b0"}]`
	st, body = e.rpc(admin, "CreateBinarySecurityPolicy", "Name", "test-policy-04-11", "Remark", "Remark", "Policy", examplePolicy,
		"Clusters", exampleClusters, "Status", "enabled", "SourceIp", "1.2.3.4")
	expect(t, st, body, 200, "")
	if len(body) != 1 {
		t.Errorf("CreateBinarySecurityPolicy answers only RequestId: %v", body)
	}
	snap, err := policy.LoadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if ps := snap.Policies(); len(ps) != 1 || ps[0].Spec.Policy.RequiredAttestors[0] != "test-xcs-04-11-hhht" || len(ps[0].Spec.Clusters) != 2 || ps[0].Spec.SourceIP != "1.2.3.4" {
		t.Fatalf("written policy: %+v", ps)
	}

	t.Run("modify", func(t *testing.T) {
		st, body := e.rpc(admin, "ModifyBinarySecurityPolicy", "Name", "test-policy-04-11", "Policy", examplePolicy,
			"Clusters", `[{"ClusterId":"c1"}]`, "Status", "disabled")
		expect(t, st, body, 200, "")
		snap, _ := policy.LoadDir(e.dir)
		if p := snap.Policies()[0]; p.Enabled() || p.Spec.Clusters[0].ClusterID != "c1" || p.Spec.Remark != "Remark" {
			t.Errorf("modified: %+v", p.Spec)
		}
	})
	t.Run("describe", func(t *testing.T) {
		st, body := e.rpc(admin, "DescribeBinarySecurityPolicies")
		expect(t, st, body, 200, "")
		list := body["PolicyList"].([]any)
		p := list[0].(map[string]any)
		if p["Name"] != "test-policy-04-11" || p["Status"] != "disabled" || p["Policy"].(map[string]any)["RequiredAttestors"] == nil {
			t.Errorf("describe: %v", p)
		}
		if pi := body["PageInfo"].(map[string]any); pi["TotalCount"] != 1.0 {
			t.Errorf("page info %v", pi)
		}
		st, body = e.rpc(admin, "DescribeAttestors")
		expect(t, st, body, 200, "")
		if a := body["Attestors"].([]any)[0].(map[string]any); a["Name"] != "test-xcs-04-11-hhht" || a["PublicKeys"] == nil {
			t.Errorf("attestors: %v", a)
		}
	})
	refused := []struct {
		name   string
		action string
		kv     []string
		status int
		code   string
	}{
		{"unknown attestor", "ModifyBinarySecurityPolicy", []string{"Name", "test-policy-04-11", "Policy", `{"RequiredAttestors":["ghost"]}`, "Clusters", exampleClusters}, 400, "InvalidParameter.Policy"},
		{"bad status", "ModifyBinarySecurityPolicy", []string{"Name", "test-policy-04-11", "Policy", examplePolicy, "Clusters", exampleClusters, "Status", "on"}, 400, "InvalidParameter.Status"},
		{"malformed clusters", "ModifyBinarySecurityPolicy", []string{"Name", "test-policy-04-11", "Policy", examplePolicy, "Clusters", `[{"ClusterId":1}]`}, 400, "InvalidParameter.Clusters.Malformed"},
		{"unknown field in Policy", "ModifyBinarySecurityPolicy", []string{"Name", "test-policy-04-11", "Policy", `{"Mode":"x"}`, "Clusters", exampleClusters}, 400, "InvalidParameter.Policy.Malformed"},
		{"missing Clusters", "ModifyBinarySecurityPolicy", []string{"Name", "test-policy-04-11", "Policy", examplePolicy}, 400, "InvalidParameter.Clusters"},
		{"attestor in use", "DeleteAttestor", []string{"Name", "test-xcs-04-11-hhht"}, 409, "EntityInUse"},
		{"attestor without keys", "ModifyAttestor", []string{"Name", "test-xcs-04-11-hhht", "PublicKeys", "[]"}, 400, ""},
		{"name with a slash", "CreateAttestor", []string{"Name", "a/b", "PublicKeys", keys}, 400, "InvalidParameter.Name"},
	}
	for _, c := range refused {
		t.Run("refused: "+c.name, func(t *testing.T) {
			before := dirState(t, e.dir)
			st, body := e.rpc(admin, c.action, c.kv...)
			expect(t, st, body, c.status, c.code)
			t.Log(body["Message"])
			if !strings.HasPrefix(body["Code"].(string), "InvalidParameter") && c.status == 400 {
				t.Errorf("code %v", body["Code"])
			}
			if after := dirState(t, e.dir); !reflect.DeepEqual(before, after) {
				t.Errorf("a refused change touched the directory")
			}
		})
	}
	t.Run("delete", func(t *testing.T) {
		st, body := e.rpc(admin, "DeleteBinarySecurityPolicy", "Name", "test-policy-04-11")
		expect(t, st, body, 200, "")
		st, body = e.rpc(admin, "DeleteAttestor", "Name", "test-xcs-04-11-hhht")
		expect(t, st, body, 200, "")
		if files := dirState(t, e.dir); len(files) != 0 {
			t.Errorf("left files %v", files)
		}
	})
}

func TestSharedFileIsNotRewritten(t *testing.T) {
	e := newEnv(t)
	doc := "apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {name: a}\nspec: {strategyId: 1, clusterId: c1, ruleAction: 1}\n---\n" +
		"apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {name: b}\nspec: {strategyId: 2, clusterId: c1, ruleAction: 1}\n"
	if err := os.WriteFile(filepath.Join(e.dir, "both.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	st, body := e.rpc("admin-token", "UpdateOpaStrategyNew", "StrategyId", "1", "RuleAction", "2")
	expect(t, st, body, 409, "Conflict.SharedFile")
	if b, _ := os.ReadFile(filepath.Join(e.dir, "both.yaml")); string(b) != doc {
		t.Error("file changed")
	}
}

func TestServerError(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.dir, "broken.yaml"), []byte("kind: Nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, body := e.rpc("admin-token", "DescribeAttestors")
	expect(t, st, body, 500, "ServerError")
	if body["Message"] != "ServerError" {
		t.Errorf("message %v", body["Message"])
	}
}

// TestOpaStrategyDocumentedExample creates the strategy of the documented
// GetOpaStrategyDetailNew example through the API and gets back exactly its response.
func TestOpaStrategyDocumentedExample(t *testing.T) {
	e := newEnv(t)
	raw, err := os.ReadFile("testdata/getopastrategydetailnew_response.json")
	if err != nil {
		t.Fatal(err)
	}
	var documented map[string]any
	if err := json.Unmarshal(raw, &documented); err != nil {
		t.Fatal(err)
	}
	data := documented["Data"].(map[string]any)
	kv := []string{}
	for k, v := range data {
		switch k {
		case "StrategyId", "CurrentPage", "PageSize":
			continue
		}
		s, ok := v.(string)
		if !ok {
			s = jsonString(v)
		}
		kv = append(kv, k, s)
	}
	st, body := e.rpc("admin-token", "CreateOpaStrategyNew", kv...)
	expect(t, st, body, 200, "")
	id := body["Data"].(map[string]any)["StrategyId"]
	if id != 1.0 {
		t.Fatalf("StrategyId %v", id)
	}
	st, body = e.rpc("admin-token", "GetOpaStrategyDetailNew", "StrategyId", "1")
	expect(t, st, body, 200, "")
	// The documented example numbers the strategy 1005 and echoes paging it was
	// given; everything else must match exactly.
	got := body["Data"].(map[string]any)
	got["StrategyId"], got["CurrentPage"], got["PageSize"] = data["StrategyId"], data["CurrentPage"], data["PageSize"]
	body["RequestId"] = documented["RequestId"]
	if !reflect.DeepEqual(body, documented) {
		g, _ := json.MarshalIndent(body, "", " ")
		t.Errorf("response differs from the documented example:\n%s", g)
	}

	t.Run("update, list with paging, delete", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			st, body := e.rpc("admin-token", "CreateOpaStrategyNew", "StrategyName", "extra", "RuleAction", "1", "ClusterId", "c2")
			expect(t, st, body, 200, "")
		}
		st, body := e.rpc("admin-token", "UpdateOpaStrategyNew", "StrategyId", "2", "RuleAction", "2", "ImageName", `["bad-*"]`)
		expect(t, st, body, 200, "")
		st, body = e.rpc("admin-token", "GetOpaStrategyDetailNew", "StrategyId", "2")
		if d := body["Data"].(map[string]any); d["RuleAction"] != 2.0 || d["ImageName"].([]any)[0] != "bad-*" || d["ClusterId"] != "c2" {
			t.Errorf("updated: %v", d)
		}
		st, body = e.rpc("admin-token", "ListOpaClusterStrategyNew", "CurrentPage", "2", "PageSize", "3")
		expect(t, st, body, 200, "")
		if list := body["Data"].([]any); len(list) != 1 || list[0].(map[string]any)["StrategyId"] != 4.0 {
			t.Errorf("page 2: %v", list)
		}
		if pi := body["PageInfo"].(map[string]any); pi["TotalCount"] != 4.0 || pi["Count"] != 1.0 {
			t.Errorf("page info %v", pi)
		}
		st, body = e.rpc("admin-token", "ListOpaClusterStrategyNew", "ClusterId", "c2")
		if list := body["Data"].([]any); len(list) != 3 {
			t.Errorf("cluster filter: %d", len(list))
		}
		// A cluster id is matched whole, not as a suffix of another.
		st, body = e.rpc("admin-token", "ListOpaClusterStrategyNew", "ClusterId", "2")
		if list := body["Data"].([]any); len(list) != 0 {
			t.Errorf("cluster filter by a suffix: %d strategies", len(list))
		}
		st, body = e.rpc("admin-token", "DeleteOpaStrategyNew", "StrategyId", "4")
		expect(t, st, body, 200, "")
		st, body = e.rpc("admin-token", "GetOpaStrategyDetailNew", "StrategyId", "4")
		expect(t, st, body, 404, "EntityNotExist.OpaStrategy")
	})
	refused := []struct {
		name   string
		kv     []string
		status int
		code   string
	}{
		{"rule action out of range", []string{"StrategyId", "2", "RuleAction", "7"}, 400, "InvalidParameter.RuleAction"},
		{"rule action not a number", []string{"StrategyId", "2", "RuleAction", "block"}, 400, "InvalidParameter.RuleAction"},
		{"malformed AlarmDetail", []string{"StrategyId", "2", "AlarmDetail", `{"Vul":{"RiskLevel":"high"}}`}, 400, "InvalidParameter.AlarmDetail.Malformed"},
		{"bad risk level", []string{"StrategyId", "2", "AlarmDetail", `{"Vul":{"RiskLevel":["severe"]}}`}, 400, "InvalidParameter.AlarmDetail"},
		{"UnScanedImage not a bool", []string{"StrategyId", "2", "UnScanedImage", "maybe"}, 400, "InvalidParameter.UnScanedImage"},
		{"missing StrategyId", []string{"RuleAction", "2"}, 400, "InvalidParameter.StrategyId"},
		{"unknown strategy", []string{"StrategyId", "99", "RuleAction", "2"}, 404, "EntityNotExist.OpaStrategy"},
	}
	for _, c := range refused {
		t.Run("refused: "+c.name, func(t *testing.T) {
			before := dirState(t, e.dir)
			st, body := e.rpc("admin-token", "UpdateOpaStrategyNew", c.kv...)
			expect(t, st, body, c.status, c.code)
			if !reflect.DeepEqual(before, dirState(t, e.dir)) {
				t.Error("a refused change touched the directory")
			}
		})
	}
	t.Run("create needs StrategyName and RuleAction", func(t *testing.T) {
		st, body := e.rpc("admin-token", "CreateOpaStrategyNew", "RuleAction", "1")
		expect(t, st, body, 400, "InvalidParameter.StrategyName")
		st, body = e.rpc("admin-token", "CreateOpaStrategyNew", "StrategyName", "x")
		expect(t, st, body, 400, "InvalidParameter.RuleAction")
	})
}

func TestUnknownPathsAnswerWithRequestId(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path string }{{"GET", "/"}, {"GET", "/v9/nothing"}, {"POST", "/v5/agencies/x/unknown"}} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			st, body := e.rest("admin-token", c.method, c.path, nil)
			expect(t, st, body, 404, "InvalidAction.NotFound")
		})
	}
}

// TestConcurrentCreates: strategies created at once get distinct ids and
// all land.
func TestConcurrentCreates(t *testing.T) {
	e := newEnv(t)
	const n = 8
	done := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			st, _ := e.rpc("admin-token", "CreateOpaStrategyNew", "StrategyName", "s", "RuleAction", "1", "ClusterId", "c1")
			done <- st
		}()
	}
	for i := 0; i < n; i++ {
		if st := <-done; st != 200 {
			t.Errorf("status %d", st)
		}
	}
	snap, err := policy.LoadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(snap.Strategies()); got != n {
		t.Errorf("%d strategies, want %d", got, n)
	}
}

// TestStoreCheckRefuses: a set the Check hook refuses (serve: the Rego
// engine does not compile) is a ServerError and nothing is written.
func TestStoreCheckRefuses(t *testing.T) {
	e := newEnv(t)
	store := &DirStore{Dir: e.dir, Check: func(*policy.Snapshot) error { return os.ErrInvalid }}
	h, err := NewHandler(store, e.h.auth, filepath.Join(t.TempDir(), "s.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Config.Handler = h
	st, body := e.rpc("admin-token", "CreateOpaStrategyNew", "StrategyName", "s", "RuleAction", "1")
	expect(t, st, body, 500, "ServerError")
	if files := dirState(t, e.dir); len(files) != 0 {
		t.Errorf("written: %v", files)
	}
}

func TestPanicIsAServerError(t *testing.T) {
	e := newEnv(t)
	e.h.mux.HandleFunc("POST /panic", e.h.wrap(false, func(*call) (any, int, error) { panic("boom") }))
	st, body := e.rest("admin-token", "POST", "/panic", nil)
	expect(t, st, body, 500, "ServerError")
}
