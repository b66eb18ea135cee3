package api

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestTrustPolicyKeys: every condition key a trust policy is accepted
// with takes effect when an agency is assumed; keys that could not are
// refused when written, naming the key.
func TestTrustPolicyKeys(t *testing.T) {
	e := newEnv(t)
	const admin = "admin-token"
	denyMallory := `{"Version":"5.0","Statement":[{"Effect":"Allow","Action":["sts:agencies:assume"],"Principal":{"IAM":["*"]}},` +
		`{"Effect":"Deny","Action":["sts:agencies:assume"],"Principal":{"IAM":["*"]},"Condition":{"StringEquals":{"imagegate:Principal":["ci-bot"]}}}]}`
	st, body := e.rest(admin, "POST", "/v5/agencies", map[string]any{"agency_name": "a", "trust_policy": denyMallory})
	expectREST(t, st, body, 201, "")
	agency := body["agency"].(map[string]any)["agency_id"].(string)
	t.Run("a Deny on imagegate:Principal refuses the caller it names", func(t *testing.T) {
		st, body := e.rest("ci-token", "POST", "/v5/agencies/"+agency+"/assume", nil)
		expectREST(t, st, body, 403, "NoPermission")
		st, body = e.rest("bob-token", "POST", "/v5/agencies/"+agency+"/assume", nil)
		expectREST(t, st, body, 201, "")
	})
	refused := []struct{ name, doc, key string }{
		{"imagegate:ClusterId", `{"Version":"5.0","Statement":[{"Effect":"Deny","Action":["sts:agencies:assume"],"Principal":{"IAM":["*"]},"Condition":{"StringLike":{"imagegate:ClusterId":["prod-*"]}}}]}`, "imagegate:ClusterId"},
		{"imagegate:Namespace in an Allow", `{"Version":"5.0","Statement":[{"Effect":"Allow","Action":["sts:agencies:assume"],"Principal":{"IAM":["*"]},"Condition":{"StringEquals":{"imagegate:Namespace":["web"]}}}]}`, "imagegate:Namespace"},
	}
	for _, c := range refused {
		t.Run("refused: "+c.name, func(t *testing.T) {
			before := readFile(t, e.state)
			for _, call := range []struct{ method, path string }{{"POST", "/v5/agencies"}, {"PUT", "/v5/agencies/" + agency + "/trust-policy"}} {
				st, body := e.rest(admin, call.method, call.path, map[string]any{"agency_name": "b", "trust_policy": c.doc})
				if call.method == "PUT" {
					st, body = e.rest(admin, call.method, call.path, map[string]any{"trust_policy": c.doc})
				}
				expectREST(t, st, body, 400, "InvalidParameter.trust_policy.Malformed")
				if msg, _ := body["error_msg"].(string); !strings.Contains(msg, `"`+c.key+`"`) {
					t.Errorf("%s %s: the message does not name the key: %q", call.method, call.path, msg)
				}
			}
			if before != readFile(t, e.state) {
				t.Error("a refused trust policy touched the IAM state")
			}
		})
	}
}

// TestDocumentVersions: each kind of policy carries its own cloud's Version.
func TestDocumentVersions(t *testing.T) {
	e := newEnv(t)
	const admin = "admin-token"
	trust := func(v string) string {
		return `{"Version":"` + v + `","Statement":[{"Effect":"Allow","Action":["sts:agencies:assume"],"Principal":{"IAM":["ci-bot"]}}]}`
	}
	custom := func(v string) string {
		return `{"Version":"` + v + `","Statement":[{"Effect":"Allow","Action":["imagegate:Get*"],"Resource":["*"]}]}`
	}
	cases := []struct {
		name   string
		do     func() (int, map[string]any)
		status int
		code   string
	}{
		{"trust 5.0", func() (int, map[string]any) {
			return e.rest(admin, "POST", "/v5/agencies", map[string]any{"agency_name": "ok", "trust_policy": trust("5.0")})
		}, 201, ""},
		{"trust 1.1", func() (int, map[string]any) {
			return e.rest(admin, "POST", "/v5/agencies", map[string]any{"agency_name": "v11", "trust_policy": trust("1.1")})
		}, 400, "InvalidParameter.trust_policy.Malformed"},
		{"trust 1", func() (int, map[string]any) {
			return e.rest(admin, "POST", "/v5/agencies", map[string]any{"agency_name": "v1", "trust_policy": trust("1")})
		}, 400, "InvalidParameter.trust_policy.Malformed"},
		{"custom 1.1", func() (int, map[string]any) {
			return e.rest(admin, "POST", "/v3.0/OS-ROLE/roles", role("ok", custom("1.1")))
		}, 201, ""},
		{"custom 5.0", func() (int, map[string]any) {
			return e.rest(admin, "POST", "/v3.0/OS-ROLE/roles", role("v5", custom("5.0")))
		}, 400, "InvalidParameter.policy.Malformed"},
		{"custom 1", func() (int, map[string]any) {
			return e.rest(admin, "POST", "/v3.0/OS-ROLE/roles", role("v1", custom("1")))
		}, 400, "InvalidParameter.policy.Malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body := c.do()
			expectREST(t, st, body, c.status, c.code)
			if c.code != "" && !strings.Contains(body["error_msg"].(string), "Version") {
				t.Errorf("the message does not say Version: %v", body)
			}
		})
	}
}

// TestCustomPolicyNormalized: a custom policy written with strings and
// numbers where the document has lists of strings reads back as lists of
// strings; Resource is optional; description_cn is answered only when
// passed.
func TestCustomPolicyNormalized(t *testing.T) {
	e := newEnv(t)
	const admin = "admin-token"
	loose := `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":"imagegate:List*","Resource":"*"},` +
		`{"Effect":"Deny","Action":["imagegate:UpdateOpaStrategyNew"],"Condition":{"NumericEquals":{"imagegate:RuleAction":3},"Bool":{"acs:SecureTransport":false}}}]}`
	want := []any{
		map[string]any{"Effect": "Allow", "Action": []any{"imagegate:List*"}, "Resource": []any{"*"}},
		map[string]any{"Effect": "Deny", "Action": []any{"imagegate:UpdateOpaStrategyNew"},
			"Condition": map[string]any{"NumericEquals": map[string]any{"imagegate:RuleAction": []any{"3"}}, "Bool": map[string]any{"acs:SecureTransport": []any{"false"}}}},
	}
	body := map[string]any{"role": map[string]any{"display_name": "Loose", "type": "AX", "description": "d", "policy": rawJSON(loose)}}
	st, created := e.rest(admin, "POST", "/v3.0/OS-ROLE/roles", body)
	expectREST(t, st, created, 201, "")
	id := created["role"].(map[string]any)["id"].(string)
	for _, read := range []struct {
		name string
		role func() map[string]any
	}{
		{"create's answer", func() map[string]any { return created["role"].(map[string]any) }},
		{"GET", func() map[string]any {
			st, got := e.rest(admin, "GET", "/v3.0/OS-ROLE/roles/"+id, nil)
			expectREST(t, st, got, 200, "")
			return got["role"].(map[string]any)
		}},
		{"PATCH's answer", func() map[string]any {
			st, got := e.rest(admin, "PATCH", "/v3.0/OS-ROLE/roles/"+id, body)
			expectREST(t, st, got, 200, "")
			return got["role"].(map[string]any)
		}},
	} {
		t.Run(read.name, func(t *testing.T) {
			r := read.role()
			if got := r["policy"].(map[string]any)["Statement"]; !reflect.DeepEqual(got, want) {
				t.Errorf("policy read back as\n%v\nwant\n%v", got, want)
			}
			if _, ok := r["description_cn"]; ok {
				t.Errorf("description_cn answered though never passed: %v", r)
			}
		})
	}
	t.Run("the normalized policy still decides", func(t *testing.T) {
		st, b := e.rest(admin, "PUT", "/v3.0/OS-ROLE/users/bob/roles/"+id, nil)
		expectREST(t, st, b, 204, "")
		st, b = e.rpc("bob-token", "ListOpaClusterStrategyNew")
		expect(t, st, b, 200, "")
	})
	t.Run("description_cn passed empty is answered empty", func(t *testing.T) {
		b := map[string]any{"role": map[string]any{"display_name": "WithCN", "type": "AX", "description": "d", "description_cn": "",
			"policy": rawJSON(`{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:Get*"]}]}`)}}
		st, got := e.rest(admin, "POST", "/v3.0/OS-ROLE/roles", b)
		expectREST(t, st, got, 201, "")
		if v, ok := got["role"].(map[string]any)["description_cn"]; !ok || v != "" {
			t.Errorf("description_cn: %v %v", v, ok)
		}
	})
	t.Run("refused: a condition value that is neither string, number nor boolean", func(t *testing.T) {
		b := map[string]any{"role": map[string]any{"display_name": "Bad", "type": "AX", "description": "d",
			"policy": rawJSON(`{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["*"],"Condition":{"StringEquals":{"imagegate:ClusterId":[{"a":1}]}}}]}`)}}
		st, got := e.rest(admin, "POST", "/v3.0/OS-ROLE/roles", b)
		expectREST(t, st, got, http.StatusBadRequest, "InvalidParameter.policy.Malformed")
	})
}
