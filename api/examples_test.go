package api

import "testing"

// TestAccessControlExamples runs docs/access-control.md's worked examples.
func TestAccessControlExamples(t *testing.T) {
	e := newEnv(t)
	const admin = "admin-token"
	t.Run("security team reads everything and changes nothing", func(t *testing.T) {
		st, body := e.rest(admin, "POST", "/v3.0/OS-ROLE/roles", role("SecurityReadOnly", readOnly))
		expectREST(t, st, body, 201, "")
		id := body["role"].(map[string]any)["id"].(string)
		st, body = e.rest(admin, "PUT", "/v3.0/OS-ROLE/groups/security/roles/"+id, nil)
		expectREST(t, st, body, 204, "")
		st, body = e.rpc(admin, "CreateControlPolicy", "PolicyName", "ReadOnlySecurity", "EffectScope", "RAM", "PolicyDocument",
			`{"Version":"1","Statement":[{"Effect":"Deny","NotAction":["imagegate:Get*","imagegate:List*","imagegate:Describe*"],"Resource":"*"}]}`)
		expect(t, st, body, 200, "")
		cp := body["ControlPolicy"].(map[string]any)["PolicyId"].(string)
		st, body = e.rpc(admin, "AttachControlPolicy", "PolicyId", cp, "TargetId", "group:security")
		expect(t, st, body, 200, "")
		// Even a broad grant later attached to alice does not let her write.
		st, body = e.rest(admin, "POST", "/v3.0/OS-ROLE/roles", role("Everything", `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["*"],"Resource":["*"]}]}`))
		expectREST(t, st, body, 201, "")
		st, body = e.rest(admin, "PUT", "/v3.0/OS-ROLE/users/alice/roles/"+body["role"].(map[string]any)["id"].(string), nil)
		expectREST(t, st, body, 204, "")
		for _, read := range []string{"DescribeBinarySecurityPolicies", "DescribeAttestors", "ListOpaClusterStrategyNew", "ListControlPolicies"} {
			st, body := e.rpc("alice-token", read)
			expect(t, st, body, 200, "")
		}
		st, body = e.rpc("alice-token", "CreateOpaStrategyNew", "StrategyName", "x", "RuleAction", "2")
		expect(t, st, body, 403, "NoPermission")
		if d := body["AccessDeniedDetail"].(map[string]any); d["Reason"] != "ExplicitDeny" || d["PolicyId"] != cp {
			t.Errorf("detail %v", d)
		}
		st, body = e.rpc("alice-token", "DetachControlPolicy", "PolicyId", cp, "TargetId", "group:security")
		expect(t, st, body, 403, "NoPermission")
	})
	t.Run("trust policy with a source address condition", func(t *testing.T) {
		for _, c := range []struct {
			cidr   string
			status int
		}{{"10.20.0.0/16", 403}, {"127.0.0.0/8", 201}} {
			st, body := e.rest(admin, "POST", "/v5/agencies", map[string]any{"agency_name": "ci-" + c.cidr[:2],
				"trust_policy": `{"Version":"5.0","Statement":[{"Effect":"Allow","Action":["sts:agencies:assume"],"Principal":{"IAM":["ci-bot"]},"Condition":{"IpAddress":{"acs:SourceIp":["` + c.cidr + `"]}}}]}`})
			expectREST(t, st, body, 201, "")
			agency := body["agency"].(map[string]any)["agency_id"].(string)
			st, body = e.rest("ci-token", "POST", "/v5/agencies/"+agency+"/assume", `{"duration_seconds":900}`)
			if c.status == 403 {
				expectREST(t, st, body, 403, "NoPermission")
			} else {
				expectREST(t, st, body, 201, "")
			}
		}
	})
}
