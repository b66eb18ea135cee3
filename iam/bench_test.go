package iam

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkAuthorize: a caller in 3 groups, 20 custom and 5 control
// policies attached around it, conditions on every statement.
func BenchmarkAuthorize(b *testing.B) {
	var custom []CustomPolicy
	for i := 0; i < 20; i++ {
		doc := fmt.Sprintf(`{"Version":"1","Statement":[
			{"Effect":"Allow","Action":["imagegate:Get*","imagegate:List*"],"Resource":"imagegate:opastrategy/%d*"},
			{"Effect":"Allow","Action":"imagegate:UpdateOpaStrategyNew","Resource":"*","Condition":{"StringLike":{"imagegate:ClusterId":"dev-*"},"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}},
			{"Effect":"Deny","Action":"imagegate:Delete*","Resource":"*","Condition":{"DateGreaterThan":{"acs:CurrentTime":"2030-01-01T00:00:00Z"}}}]}`, i)
		p, err := testValidator.Parse("p", doc, Permission)
		if err != nil {
			b.Fatal(err)
		}
		custom = append(custom, CustomPolicy{ID: fmt.Sprint("p", i), Policy: p, Targets: []string{[]string{"user:alice", "group:g1", "group:g2", "group:g3"}[i%4]}})
	}
	var control []ControlPolicy
	for i := 0; i < 5; i++ {
		p, err := testValidator.Parse("p", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
			{"Effect":"Deny","Action":["imagegate:CreateOpaStrategyNew","imagegate:UpdateOpaStrategyNew"],"Resource":"*","Condition":{"NumericEquals":{"imagegate:RuleAction":3},"StringLike":{"imagegate:ClusterId":"prod-*"}}}]}`, Permission)
		if err != nil {
			b.Fatal(err)
		}
		control = append(control, ControlPolicy{ID: fmt.Sprint("cp", i), Scope: ScopeAll, Policy: p, Targets: []string{"*"}})
	}
	a := NewAuthorizer(control, custom)
	req := Request{
		Principal: Principal{ID: "alice", Groups: []string{"g1", "g2", "g3"}},
		Action:    "imagegate:UpdateOpaStrategyNew", Resource: "imagegate:opastrategy/1005",
		Context: map[string][]string{KeyClusterID: {"dev-1", "dev-2"}, KeyRuleAction: {"2"}, KeySourceIP: {"10.1.1.1"},
			KeyCurrentTime: {"2026-06-01T00:00:00Z"}, KeyNamespace: {"default"}},
		Now: time.Now(),
	}
	if d := a.Authorize(req); !d.Allowed {
		b.Fatalf("setup: %v", d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		a.Authorize(req)
	}
}
