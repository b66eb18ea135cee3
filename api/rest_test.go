package api

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func role(display, policy string) map[string]any {
	return map[string]any{"role": map[string]any{"display_name": display, "type": "AX", "description": "IAMDescription",
		"description_cn": "中文描述", "policy": rawJSON(policy)}}
}

type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

const readOnly = `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:Get*","imagegate:List*","imagegate:Describe*"],"Resource":["*"]}]}`

// TestCustomPolicies: Huawei Cloud IAM custom-policy role calls, and a read-only security team
// that then may create rules only in dev clusters.
func TestCustomPolicies(t *testing.T) {
	e := newEnv(t)
	const admin = "admin-token"
	st, body := e.rest(admin, "POST", "/v3.0/OS-ROLE/roles", role("SecurityReadOnly", readOnly))
	expectREST(t, st, body, 201, "")
	r := body["role"].(map[string]any)
	id := r["id"].(string)
	want := []string{"catalog", "created_time", "description", "description_cn", "display_name", "domain_id", "id", "links", "name", "policy", "type", "updated_time"}
	if !reflect.DeepEqual(keysOf(r), want) || r["catalog"] != "CUSTOMED" || r["policy"].(map[string]any)["Version"] != "1.1" {
		t.Fatalf("custom policy documented shape: %v", r)
	}
	st, body = e.rest(admin, "PUT", "/v3.0/OS-ROLE/groups/security/roles/"+id, nil)
	expectREST(t, st, body, 204, "")

	st, body = e.rpc("alice-token", "ListOpaClusterStrategyNew")
	expect(t, st, body, 200, "")
	st, body = e.rpc("alice-token", "DescribeBinarySecurityPolicies")
	expect(t, st, body, 200, "")
	st, body = e.rpc("alice-token", "CreateOpaStrategyNew", "StrategyName", "x", "RuleAction", "2", "ClusterId", "dev-1")
	expect(t, st, body, 403, "NoPermission")

	t.Run("PATCH with a StringStartWith condition", func(t *testing.T) {
		doc := `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:Get*","imagegate:List*","imagegate:Describe*"],"Resource":["*"]},
			{"Effect":"Allow","Action":["imagegate:CreateOpaStrategyNew"],"Resource":["imagegate:opastrategy/*"],"Condition":{"StringStartWith":{"imagegate:ClusterId":["dev-"]}}}]}`
		st, body := e.rest(admin, "PATCH", "/v3.0/OS-ROLE/roles/"+id, role("SecurityReadOnly", doc))
		expectREST(t, st, body, 200, "")
		if sts := body["role"].(map[string]any)["policy"].(map[string]any)["Statement"].([]any); len(sts) != 2 {
			t.Errorf("patched: %v", body)
		}
		st, body = e.rpc("alice-token", "CreateOpaStrategyNew", "StrategyName", "x", "RuleAction", "2", "ClusterId", "dev-1")
		expect(t, st, body, 200, "")
		st, body = e.rpc("alice-token", "CreateOpaStrategyNew", "StrategyName", "x", "RuleAction", "2", "ClusterId", "prod-1")
		expect(t, st, body, 403, "NoPermission")
		st, body = e.rest(admin, "GET", "/v3.0/OS-ROLE/roles/"+id, nil)
		expectREST(t, st, body, 200, "")
		st, body = e.rest(admin, "GET", "/v3.0/OS-ROLE/roles", nil)
		if roles := body["roles"].([]any); len(roles) != 1 || roles[0].(map[string]any)["attachments"].([]any)[0] != "group:security" {
			t.Errorf("list: %v", body)
		}
	})
	long := `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["*"],"Resource":["*"],"Sid":"` + strings.Repeat("s", 4096) + `"}]}`
	refused := []restRefusal{
		{"policy over 4096 characters", admin, "PATCH", "/v3.0/OS-ROLE/roles/" + id, role("SecurityReadOnly", long), 400, "InvalidParameter.policy.Length"},
		{"unknown operator", admin, "PATCH", "/v3.0/OS-ROLE/roles/" + id, role("SecurityReadOnly", `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["*"],"Resource":["*"],"Condition":{"StringBeginsWith":{"imagegate:ClusterId":["a"]}}}]}`), 400, "InvalidParameter.policy.Malformed"},
		{"malformed body", admin, "PATCH", "/v3.0/OS-ROLE/roles/" + id, `{"role":`, 400, "InvalidParameter.body.Malformed"},
		{"unknown body field", admin, "PATCH", "/v3.0/OS-ROLE/roles/" + id, `{"role":{"display_name":"x","colour":"red"}}`, 400, "InvalidParameter.body.Malformed"},
		{"missing display_name", admin, "PATCH", "/v3.0/OS-ROLE/roles/" + id, role("", readOnly), 400, "InvalidParameter.display_name"},
		{"bad type", admin, "POST", "/v3.0/OS-ROLE/roles", map[string]any{"role": map[string]any{"display_name": "x", "type": "ZZ", "description": "d", "policy": rawJSON(readOnly)}}, 400, "InvalidParameter.type"},
		{"unknown role", admin, "PATCH", "/v3.0/OS-ROLE/roles/nope", role("x", readOnly), 404, "EntityNotExist.Role"},
		{"no permission", "alice-token", "PATCH", "/v3.0/OS-ROLE/roles/" + id, role("SecurityReadOnly", `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["*"],"Resource":["*"]}]}`), 403, "NoPermission"},
		{"no token", "", "GET", "/v3.0/OS-ROLE/roles/" + id, nil, 401, "InvalidToken"},
		{"duplicate display name", admin, "POST", "/v3.0/OS-ROLE/roles", role("SecurityReadOnly", readOnly), 409, "EntityAlreadyExists.Role"},
		{"delete while attached", admin, "DELETE", "/v3.0/OS-ROLE/roles/" + id, nil, 409, "DeleteConflict.Role.Attachment"},
		{"attach to an unknown kind", admin, "PUT", "/v3.0/OS-ROLE/teams/x/roles/" + id, nil, 404, "InvalidAction.NotFound"},
		{"attach twice", admin, "PUT", "/v3.0/OS-ROLE/groups/security/roles/" + id, nil, 409, "EntityAlreadyExists.Attachment"},
		{"detach what is not attached", admin, "DELETE", "/v3.0/OS-ROLE/users/zed/roles/" + id, nil, 404, "EntityNotExist.Attachment"},
	}
	e.expectRESTRefusals(t, refused)
	t.Run("detach and delete", func(t *testing.T) {
		st, body := e.rest(admin, "DELETE", "/v3.0/OS-ROLE/groups/security/roles/"+id, nil)
		expectREST(t, st, body, 204, "")
		st, body = e.rpc("alice-token", "ListOpaClusterStrategyNew")
		expect(t, st, body, 403, "NoPermission")
		st, body = e.rest(admin, "DELETE", "/v3.0/OS-ROLE/roles/"+id, nil)
		expectREST(t, st, body, 204, "")
		st, body = e.rest(admin, "GET", "/v3.0/OS-ROLE/roles/"+id, nil)
		expectREST(t, st, body, 404, "EntityNotExist.Role")
	})
}

// TestAgencies: the agency's trust policy decides who may assume an agency;
// the assumed token acts with the agency's policies until it expires.
func TestAgencies(t *testing.T) {
	e := newEnv(t)
	const admin = "admin-token"
	trust := func(who string) string {
		return `{"Version":"5.0","Statement":[{"Action":["sts:agencies:assume","sts::tagSession","sts::setSourceIdentity"],"Effect":"Allow","Principal":{"IAM":["` + who + `"]}}]}`
	}
	st, body := e.rest(admin, "POST", "/v5/agencies", map[string]any{"agency_name": "ci-deployer", "trust_policy": trust("ci-bot"), "description": "CI deploys rules"})
	expectREST(t, st, body, 201, "")
	agency := body["agency"].(map[string]any)["agency_id"].(string)
	st, body = e.rest(admin, "POST", "/v3.0/OS-ROLE/roles", role("Deployer",
		`{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:CreateOpaStrategyNew","imagegate:UpdateOpaStrategyNew"],"Resource":["imagegate:opastrategy/*"]}]}`))
	expectREST(t, st, body, 201, "")
	roleID := body["role"].(map[string]any)["id"].(string)
	st, body = e.rest(admin, "PUT", "/v3.0/OS-ROLE/agencies/"+agency+"/roles/"+roleID, nil)
	expectREST(t, st, body, 204, "")

	st, body = e.rpc("ci-token", "CreateOpaStrategyNew", "StrategyName", "ci", "RuleAction", "1", "ClusterId", "c1")
	expect(t, st, body, 403, "NoPermission")
	st, body = e.rest("ci-token", "POST", "/v5/agencies/"+agency+"/assume", map[string]any{"duration_seconds": 900, "session_name": "pipeline-42"})
	expectREST(t, st, body, 201, "")
	session := body["credentials"].(map[string]any)["security_token"].(string)
	if exp := body["credentials"].(map[string]any)["expires_at"]; exp != "2026-06-01T12:15:00Z" {
		t.Errorf("expires_at %v", exp)
	}
	st, body = e.rpc(session, "CreateOpaStrategyNew", "StrategyName", "ci", "RuleAction", "1", "ClusterId", "c1")
	expect(t, st, body, 200, "")
	st, body = e.rpc(session, "DeleteOpaStrategyNew", "StrategyId", "1")
	expect(t, st, body, 403, "NoPermission")
	st, body = e.rest(session, "POST", "/v5/agencies/"+agency+"/assume", nil)
	expectREST(t, st, body, 403, "NoPermission")
	if enc, _ := body["encoded_authorization_message"].(string); enc == "" {
		t.Errorf("no encoded_authorization_message: %v", body)
	}

	refused := []restRefusal{
		{"a principal the trust policy does not name", "bob-token", "POST", "/v5/agencies/" + agency + "/assume", nil, 403, "NoPermission"},
		{"unknown agency", "ci-token", "POST", "/v5/agencies/nope/assume", nil, 403, "NoPermission"},
		// An untrusted caller learns nothing of the agency's limits.
		{"untrusted, duration too long", "bob-token", "POST", "/v5/agencies/" + agency + "/assume", map[string]any{"duration_seconds": 7200}, 403, "NoPermission"},
		{"duration too long", "ci-token", "POST", "/v5/agencies/" + agency + "/assume", map[string]any{"duration_seconds": 7200}, 400, "InvalidParameter.duration_seconds"},
		{"malformed trust policy", admin, "PUT", "/v5/agencies/" + agency + "/trust-policy", map[string]any{"trust_policy": `{"Version":"5.0"`}, 400, "InvalidParameter.trust_policy.Malformed"},
		{"trust policy without principal", admin, "PUT", "/v5/agencies/" + agency + "/trust-policy", map[string]any{"trust_policy": `{"Version":"5.0","Statement":[{"Action":["sts:agencies:assume"],"Effect":"Allow"}]}`}, 400, "InvalidParameter.trust_policy.Malformed"},
		{"trust policy too long", admin, "PUT", "/v5/agencies/" + agency + "/trust-policy", map[string]any{"trust_policy": strings.Repeat(" ", 4097)}, 400, "InvalidParameter.trust_policy.Length"},
		{"missing trust_policy", admin, "PUT", "/v5/agencies/" + agency + "/trust-policy", map[string]any{}, 400, "InvalidParameter.trust_policy"},
		{"bad agency id", admin, "PUT", "/v5/agencies/a_b/trust-policy", map[string]any{"trust_policy": trust("x")}, 400, "InvalidParameter.agency_id"},
		{"unknown agency update", admin, "PUT", "/v5/agencies/nope/trust-policy", map[string]any{"trust_policy": trust("x")}, 404, "EntityNotExist.Agency"},
		{"no permission", "bob-token", "PUT", "/v5/agencies/" + agency + "/trust-policy", map[string]any{"trust_policy": trust("bob")}, 403, "NoPermission"},
		{"duplicate name", admin, "POST", "/v5/agencies", map[string]any{"agency_name": "ci-deployer", "trust_policy": trust("x")}, 409, "EntityAlreadyExists.Agency"},
		{"bad name", admin, "POST", "/v5/agencies", map[string]any{"agency_name": "ci deployer", "trust_policy": trust("x")}, 400, "InvalidParameter.agency_name"},
		{"max_session_duration over 12 hours", admin, "POST", "/v5/agencies", map[string]any{"agency_name": "long", "trust_policy": trust("x"), "max_session_duration": 43201}, 400, "InvalidParameter.max_session_duration"},
		{"max_session_duration under an hour", admin, "POST", "/v5/agencies", map[string]any{"agency_name": "short", "trust_policy": trust("x"), "max_session_duration": 3599}, 400, "InvalidParameter.max_session_duration"},
	}
	e.expectRESTRefusals(t, refused)
	t.Run("the assumed token expires", func(t *testing.T) {
		e.advance(15*time.Minute + time.Second)
		st, body := e.rpc(session, "UpdateOpaStrategyNew", "StrategyId", "1", "RuleAction", "2")
		expect(t, st, body, 401, "InvalidToken.Expired")
	})
	t.Run("PUT trust-policy changes who may assume", func(t *testing.T) {
		st, body := e.rest(admin, "PUT", "/v5/agencies/"+agency+"/trust-policy", map[string]any{"trust_policy": trust("group:readers")})
		expectREST(t, st, body, 200, "")
		if body != nil {
			t.Errorf("PUT trust-policy answers without a body: %v", body)
		}
		st, body = e.rest("ci-token", "POST", "/v5/agencies/"+agency+"/assume", nil)
		expectREST(t, st, body, 403, "NoPermission")
		st, body = e.rest("alice-token", "POST", "/v5/agencies/"+agency+"/assume", nil)
		expectREST(t, st, body, 201, "")
		session = body["credentials"].(map[string]any)["security_token"].(string)
		st, body = e.rest(admin, "GET", "/v5/agencies/"+agency, nil)
		expectREST(t, st, body, 200, "")
		if body["agency"].(map[string]any)["trust_policy"] != trust("group:readers") {
			t.Errorf("get: %v", body)
		}
		st, body = e.rpc(session, "UpdateOpaStrategyNew", "StrategyId", "1", "RuleAction", "2")
		expect(t, st, body, 200, "")
	})
	t.Run("a trust policy change ends the sessions it no longer allows", func(t *testing.T) {
		st, body := e.rest(admin, "PUT", "/v5/agencies/"+agency+"/trust-policy", map[string]any{"trust_policy": trust("ci-bot")})
		expectREST(t, st, body, 200, "")
		st, body = e.rpc(session, "UpdateOpaStrategyNew", "StrategyId", "1", "RuleAction", "1")
		expect(t, st, body, 401, "InvalidToken")
		if !strings.Contains(body["Message"].(string), "no longer lets alice") {
			t.Errorf("message %v", body["Message"])
		}
		st, body = e.rest("ci-token", "POST", "/v5/agencies/"+agency+"/assume", nil)
		expectREST(t, st, body, 201, "")
		session = body["credentials"].(map[string]any)["security_token"].(string)
		st, body = e.rpc(session, "UpdateOpaStrategyNew", "StrategyId", "1", "RuleAction", "1")
		expect(t, st, body, 200, "")
	})
	t.Run("deleting the agency ends its sessions", func(t *testing.T) {
		st, body := e.rest(admin, "DELETE", "/v5/agencies/"+agency, nil)
		expectREST(t, st, body, 204, "")
		st, body = e.rpc(session, "ListOpaClusterStrategyNew")
		expect(t, st, body, 401, "InvalidToken")
		st, body = e.rest(admin, "GET", "/v5/agencies/"+agency, nil)
		expectREST(t, st, body, 404, "EntityNotExist.Agency")
	})
}

func TestAuditEvents(t *testing.T) {
	e := newEnv(t)
	e.rpc("bob-token", "DescribeAttestors")
	e.rpc("admin-token", "DescribeAttestors")
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.events) != 2 {
		t.Fatalf("events %v", e.events)
	}
	bob, admin := e.events[0], e.events[1]
	if bob.Principal != "bob" || bob.Allowed || bob.Status != 403 || bob.Code != "NoPermission" || bob.Action != "imagegate:DescribeAttestors" ||
		bob.Resource != "imagegate:attestor/*" || !strings.Contains(bob.Decision, "ImplicitDeny") || len(bob.RequestID) != 36 {
		t.Errorf("bob: %+v", bob)
	}
	if !admin.Allowed || admin.Status != 200 || !strings.Contains(admin.Decision, "Admin") {
		t.Errorf("admin: %+v", admin)
	}
	// What the audit trail keeps besides: the caller's groups and address,
	// and no deciding statement when none decided.
	if bob.SourceIP != "127.0.0.1" || bob.Statement != -1 || bob.PolicyID != "" || len(admin.Groups) == 0 || admin.Groups[0] != "imagegate:admins" {
		t.Errorf("source, statement, groups: bob %+v admin %+v", bob, admin)
	}
}

// TestUpdatesAuthorizedBeforeAndAfter: a caller allowed to write only in
// dev clusters cannot move a production strategy or signature policy into
// dev (an update is authorized against the object as it is and as it will
// be), and can still change dev objects.
func TestUpdatesAuthorizedBeforeAndAfter(t *testing.T) {
	e := newEnv(t)
	const admin = "admin-token"
	doc := `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:*"],"Resource":["*"],"Condition":{"StringStartWith":{"imagegate:ClusterId":["dev-"]}}}]}`
	st, body := e.rest(admin, "POST", "/v3.0/OS-ROLE/roles", role("DevWriter", doc))
	expectREST(t, st, body, 201, "")
	st, body = e.rest(admin, "PUT", "/v3.0/OS-ROLE/groups/security/roles/"+body["role"].(map[string]any)["id"].(string), nil)
	expectREST(t, st, body, 204, "")

	strategy := func(token, cluster string) string {
		t.Helper()
		st, body := e.rpc(token, "CreateOpaStrategyNew", "StrategyName", "s-"+cluster, "RuleAction", "2", "ClusterId", cluster)
		expect(t, st, body, 200, "")
		return fmt.Sprint(body["Data"].(map[string]any)["StrategyId"])
	}
	prod, dev := strategy(admin, "prod-1"), strategy("alice-token", "dev-1")
	st, body = e.rpc("alice-token", "UpdateOpaStrategyNew", "StrategyId", prod, "ClusterId", "dev-1")
	expect(t, st, body, 403, "NoPermission")
	st, body = e.rpc("alice-token", "UpdateOpaStrategyNew", "StrategyId", dev, "RuleAction", "1")
	expect(t, st, body, 200, "")

	st, body = e.rpc(admin, "CreateAttestor", "Name", "ci", "PublicKeys", jsonString([]string{e.pubKey}))
	expect(t, st, body, 200, "")
	for _, cluster := range []string{"prod-1", "dev-1"} {
		st, body = e.rpc(admin, "CreateBinarySecurityPolicy", "Name", cluster+"-sig", "Policy", `{"RequiredAttestors":["ci"]}`, "Clusters", `[{"ClusterId":"`+cluster+`"}]`)
		expect(t, st, body, 200, "")
	}
	st, body = e.rpc("alice-token", "ModifyBinarySecurityPolicy", "Name", "prod-1-sig", "Policy", `{"RequiredAttestors":["ci"]}`, "Clusters", `[{"ClusterId":"dev-1"}]`)
	expect(t, st, body, 403, "NoPermission")
	st, body = e.rpc("alice-token", "ModifyBinarySecurityPolicy", "Name", "dev-1-sig", "Policy", `{"RequiredAttestors":["ci"]}`, "Clusters", `[{"ClusterId":"dev-2"}]`)
	expect(t, st, body, 200, "")
}
