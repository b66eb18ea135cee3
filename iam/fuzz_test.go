package iam

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParse: any text is either a compiled policy or an *Error with a cloud-style
// code; never a panic. Accepted documents decide requests without panicking.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`,
		`{"Version":"1.1","Statement":[{"Effect":"Deny","NotAction":["imagegate:Get*"],"NotResource":["imagegate:a?/*"],"Condition":{"StringLike":{"imagegate:ClusterId":["p*"]},"IpAddress":{"acs:SourceIp":"10.0.0.0/8"},"NumericLessThan":{"imagegate:RuleAction":3},"DateGreaterThan":{"acs:CurrentTime":"2026-01-01T00:00:00Z"},"Bool":{"acs:SecureTransport":true}}}]}`,
		`{"Version":"5.0","Statement":[{"Effect":"Allow","Action":["sts:agencies:assume"],"Principal":{"IAM":["a*"]}}]}`,
		`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"X":{}}}]}`,
		`[`, `null`, `{"Statement":null}`,
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, text string, kindByte uint8) {
		kind := Kind(kindByte % 2)
		p, err := Validator{}.Parse("PolicyDocument", text, kind)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !strings.HasPrefix(e.Code, "InvalidParameter.PolicyDocument.") {
				t.Fatalf("error %T %v without a cloud-style code", err, err)
			}
			return
		}
		if utf8.RuneCountInString(text) > MaxDocumentLen {
			t.Fatalf("accepted %d characters", utf8.RuneCountInString(text))
		}
		ctx := map[string][]string{KeyClusterID: {"prod-1", text}, KeyRuleAction: {"3", "x"}, KeySourceIP: {"10.1.1.1"},
			KeyCurrentTime: {"2026-06-01T00:00:00Z"}, KeySecureTransport: {"true"}, KeyNamespace: {""}}
		if kind == Trust {
			p.Trusts(Principal{ID: "alice", Groups: []string{"g"}}, TrustAction, ctx)
			return
		}
		a := NewAuthorizer([]ControlPolicy{{ID: "c", Scope: ScopeAll, Policy: p, Targets: []string{TargetAll}}},
			[]CustomPolicy{{ID: "p", Policy: p, Targets: []string{"user:alice"}}})
		for _, action := range []string{"imagegate:GetOpaStrategyDetailNew", text} {
			a.Authorize(Request{Principal: Principal{ID: "alice"}, Action: action, Resource: "imagegate:opastrategy/1", Context: ctx, Now: time.Now()})
		}
	})
}
