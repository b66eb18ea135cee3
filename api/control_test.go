package api

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

const denyProdAllowRules = `{"Version":"1","Statement":[{"Effect":"Deny","Action":["imagegate:CreateOpaStrategyNew","imagegate:UpdateOpaStrategyNew"],"Resource":"*","Condition":{"NumericEquals":{"imagegate:RuleAction":[3]},"StringLike":{"imagegate:ClusterId":["prod-*"]}}}]}`

func TestControlPolicies(t *testing.T) {
	e := newEnv(t)
	const admin = "admin-token"
	st, body := e.rpc(admin, "CreateControlPolicy", "PolicyName", "NoAllowRulesInProd", "Description", "Forbid-allow-rules-in-production",
		"EffectScope", "All", "PolicyDocument", denyProdAllowRules)
	expect(t, st, body, 200, "")
	cp := body["ControlPolicy"].(map[string]any)
	id := cp["PolicyId"].(string)
	wantKeys := []string{"AttachmentCount", "CreateDate", "Description", "EffectScope", "PolicyId", "PolicyName", "PolicyType", "UpdateDate"}
	if !reflect.DeepEqual(keysOf(cp), wantKeys) || cp["AttachmentCount"] != "0" || cp["PolicyType"] != "Custom" || cp["EffectScope"] != "All" || !strings.HasPrefix(id, "cp-") {
		t.Fatalf("CreateControlPolicy documented shape: %v", cp)
	}
	createProdAllow := func(token string) (int, map[string]any) {
		return e.rpc(token, "CreateOpaStrategyNew", "StrategyName", "exception", "RuleAction", "3", "ClusterId", "prod-eu", "ImageName", `["legacy-*"]`)
	}
	st, body = createProdAllow(admin)
	expect(t, st, body, 200, "")

	st, body = e.rpc(admin, "AttachControlPolicy", "PolicyId", id, "TargetId", "*")
	expect(t, st, body, 200, "")
	t.Run("the attached control policy bounds administrators (EffectScope All)", func(t *testing.T) {
		st, body := createProdAllow(admin)
		expect(t, st, body, 403, "NoPermission")
		d := body["AccessDeniedDetail"].(map[string]any)
		if d["Reason"] != "ExplicitDeny" || d["PolicyId"] != id || d["Statement"] != 0.0 {
			t.Errorf("detail %v", d)
		}
		st, body = e.rpc(admin, "CreateOpaStrategyNew", "StrategyName", "blocker", "RuleAction", "2", "ClusterId", "prod-eu")
		expect(t, st, body, 200, "")
		st, body = e.rpc(admin, "CreateOpaStrategyNew", "StrategyName", "dev-exception", "RuleAction", "3", "ClusterId", "dev-1")
		expect(t, st, body, 200, "")
		// Turning an existing prod rule into an allow rule is an update the policy forbids.
		st, body = e.rpc(admin, "UpdateOpaStrategyNew", "StrategyId", "2", "RuleAction", "3")
		expect(t, st, body, 403, "NoPermission")
		// So is moving the dev allow rule into a production scope.
		st, body = e.rpc(admin, "UpdateOpaStrategyNew", "StrategyId", "3", "Scopes", `[{"ClusterId":"prod-us","AllNamespace":1}]`)
		expect(t, st, body, 403, "NoPermission")
	})
	t.Run("EffectScope RAM leaves administrators alone", func(t *testing.T) {
		st, body := e.rpc(admin, "UpdateControlPolicy", "PolicyId", id, "NewPolicyName", "NoAllowRulesInProdRAM")
		expect(t, st, body, 200, "")
		if body["ControlPolicy"].(map[string]any)["PolicyName"] != "NoAllowRulesInProdRAM" || body["ControlPolicy"].(map[string]any)["AttachmentCount"] != "1" {
			t.Errorf("update: %v", body)
		}
		// EffectScope is fixed at creation (UpdateControlPolicy has no NewEffectScope): make a RAM twin.
		st, body = e.rpc(admin, "DetachControlPolicy", "PolicyId", id, "TargetId", "*")
		expect(t, st, body, 200, "")
		st, body = e.rpc(admin, "CreateControlPolicy", "PolicyName", "RAMOnly", "EffectScope", "RAM", "PolicyDocument", denyProdAllowRules)
		expect(t, st, body, 200, "")
		ram := body["ControlPolicy"].(map[string]any)["PolicyId"].(string)
		st, body = e.rpc(admin, "AttachControlPolicy", "PolicyId", ram, "TargetId", "*")
		expect(t, st, body, 200, "")
		st, body = createProdAllow(admin)
		expect(t, st, body, 200, "")
	})
	t.Run("list", func(t *testing.T) {
		st, body := e.rpc(admin, "ListControlPolicies", "PolicyType", "Custom")
		expect(t, st, body, 200, "")
		if body["TotalCount"] != 2.0 {
			t.Errorf("list: %v", body)
		}
		st, body = e.rpc(admin, "ListControlPolicies")
		if body["TotalCount"] != 3.0 {
			t.Errorf("list all: %v", body["TotalCount"])
		}
	})
	long := `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Sid":"` + strings.Repeat("a", 4096) + `"}]}`
	refused := []struct {
		name, action string
		kv           []string
		status       int
		code         string
	}{
		{"document over 4096 characters (update)", "UpdateControlPolicy", []string{"PolicyId", id, "NewPolicyDocument", long}, 400, "InvalidParameter.NewPolicyDocument.Length"},
		{"document over 4096 characters (create)", "CreateControlPolicy", []string{"PolicyName", "x", "PolicyDocument", long}, 400, "InvalidParameter.PolicyDocument.Length"},
		{"malformed document", "UpdateControlPolicy", []string{"PolicyId", id, "NewPolicyDocument", `{"Version":"1","Statement":[`}, 400, "InvalidParameter.NewPolicyDocument.Malformed"},
		{"unknown operator", "UpdateControlPolicy", []string{"PolicyId", id, "NewPolicyDocument", `{"Version":"1","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringMatches":{"imagegate:ClusterId":"x"}}}]}`}, 400, "InvalidParameter.NewPolicyDocument.Malformed"},
		{"unknown key", "UpdateControlPolicy", []string{"PolicyId", id, "NewPolicyDocument", `{"Version":"1","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"imagegate:Cluster":"x"}}}]}`}, 400, "InvalidParameter.NewPolicyDocument.Malformed"},
		{"unknown action", "UpdateControlPolicy", []string{"PolicyId", id, "NewPolicyDocument", `{"Version":"1","Statement":[{"Effect":"Deny","Action":"imagegate:DropAll","Resource":"*"}]}`}, 400, "InvalidParameter.NewPolicyDocument.Malformed"},
		{"bad name", "UpdateControlPolicy", []string{"PolicyId", id, "NewPolicyName", "1st policy"}, 400, "InvalidParameter.NewPolicyName.InvalidChars"},
		{"long name", "CreateControlPolicy", []string{"PolicyName", strings.Repeat("a", 129), "PolicyDocument", denyProdAllowRules}, 400, "InvalidParameter.PolicyName.Length"},
		{"bad description", "UpdateControlPolicy", []string{"PolicyId", id, "NewDescription", "has spaces"}, 400, "InvalidParameter.NewDescription.InvalidChars"},
		{"bad scope", "CreateControlPolicy", []string{"PolicyName", "x", "EffectScope", "Everyone", "PolicyDocument", denyProdAllowRules}, 400, "InvalidParameter.EffectScope"},
		{"duplicate name", "CreateControlPolicy", []string{"PolicyName", "RAMOnly", "PolicyDocument", denyProdAllowRules}, 409, "EntityAlreadyExists.ControlPolicy"},
		{"unknown policy", "UpdateControlPolicy", []string{"PolicyId", "cp-nope", "NewPolicyName", "x"}, 404, "EntityNotExist.ControlPolicy"},
		{"system policy", "UpdateControlPolicy", []string{"PolicyId", FullAccessPolicyID, "NewPolicyName", "x"}, 400, "InvalidParameter.PolicyId.SystemPolicy"},
		{"bad target", "AttachControlPolicy", []string{"PolicyId", id, "TargetId", "alice"}, 400, "InvalidParameter.TargetId"},
		{"unknown agency target", "AttachControlPolicy", []string{"PolicyId", id, "TargetId", "agency:nope"}, 404, "EntityNotExist.Agency"},
		{"detach what is not attached", "DetachControlPolicy", []string{"PolicyId", id, "TargetId", "user:zed"}, 404, "EntityNotExist.Attachment"},
		{"attached twice", "AttachControlPolicy", []string{"PolicyId", FullAccessPolicyID, "TargetId", "*"}, 409, "EntityAlreadyExists.Attachment"},
		{"delete attached", "DeleteControlPolicy", []string{"PolicyId", FullAccessPolicyID}, 400, "InvalidParameter.PolicyId.SystemPolicy"},
		{"no permission", "ListControlPolicies", nil, 403, "NoPermission"},
	}
	for _, c := range refused {
		t.Run("refused: "+c.name, func(t *testing.T) {
			before := readFile(t, e.state)
			token := admin
			if c.code == "NoPermission" {
				token = "bob-token"
			}
			st, body := e.rpc(token, c.action, c.kv...)
			expect(t, st, body, c.status, c.code)
			if before != readFile(t, e.state) {
				t.Error("a refused change touched the IAM state")
			}
		})
	}
	t.Run("delete", func(t *testing.T) {
		st, body := e.rpc(admin, "DeleteControlPolicy", "PolicyId", id)
		expect(t, st, body, 200, "")
		st, body = e.rpc(admin, "UpdateControlPolicy", "PolicyId", id, "NewPolicyName", "x")
		expect(t, st, body, 404, "EntityNotExist.ControlPolicy")
	})
	t.Run("detaching the full-access policy bounds everyone by allow-list", func(t *testing.T) {
		st, body := e.rpc(admin, "CreateControlPolicy", "PolicyName", "ReadOnly", "EffectScope", "All",
			"PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":["imagegate:Get*","imagegate:List*","imagegate:Describe*","imagegate:*ControlPolicy"],"Resource":"*"}]}`)
		expect(t, st, body, 200, "")
		ro := body["ControlPolicy"].(map[string]any)["PolicyId"].(string)
		st, body = e.rpc(admin, "AttachControlPolicy", "PolicyId", ro, "TargetId", "group:imagegate:admins")
		expect(t, st, body, 200, "")
		st, body = e.rpc(admin, "DetachControlPolicy", "PolicyId", FullAccessPolicyID, "TargetId", "*")
		expect(t, st, body, 200, "")
		st, body = e.rpc(admin, "ListOpaClusterStrategyNew")
		expect(t, st, body, 200, "")
		st, body = e.rpc(admin, "DeleteOpaStrategyNew", "StrategyId", "1")
		expect(t, st, body, 403, "NoPermission")
		if d := body["AccessDeniedDetail"].(map[string]any); d["Reason"] != "ControlPolicyBound" {
			t.Errorf("detail %v", d)
		}
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
