package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/iam"
)

// BenchmarkAuthorizeCall is the authorization step of a call as the
// handler runs it (condition context built from the request, then the
// decision) for a caller with a custom policy and two control policies.
func BenchmarkAuthorizeCall(b *testing.B) {
	e := newEnv(b)
	st, body := e.rpc("admin-token", "CreateControlPolicy", "PolicyName", "P", "EffectScope", "All", "PolicyDocument", denyProdAllowRules)
	if st != 200 {
		b.Fatal(body)
	}
	st, body = e.rpc("admin-token", "AttachControlPolicy", "PolicyId", body["ControlPolicy"].(map[string]any)["PolicyId"].(string), "TargetId", "*")
	if st != 200 {
		b.Fatal(body)
	}
	r := httptest.NewRequest("POST", "/", nil)
	c := &call{h: e.h, r: r, now: time.Now(), principal: iam.Principal{ID: "root", Groups: []string{iam.AdminGroup}}}
	ctx := map[string][]string{iam.KeyRuleAction: {"2"}, iam.KeyClusterID: {"prod-1"}, iam.KeyNamespace: {"*"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.authorize("UpdateOpaStrategyNew", "imagegate:opastrategy/7", ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetOpaStrategyDetailNew is a whole read call without TLS:
// authentication, authorization, reading a 50-object policy directory and
// the documented GetOpaStrategyDetailNew response.
func BenchmarkGetOpaStrategyDetailNew(b *testing.B) {
	e := newEnv(b)
	for i := 0; i < 50; i++ {
		if st, body := e.rpc("admin-token", "CreateOpaStrategyNew", "StrategyName", "s", "RuleAction", "2", "ClusterId", "c1", "ImageName", `["bad-*"]`); st != 200 {
			b.Fatal(body)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/?Action=GetOpaStrategyDetailNew&StrategyId=25", strings.NewReader(""))
		r.Header.Set("Authorization", "Bearer admin-token")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Body.String())
		}
	}
}
