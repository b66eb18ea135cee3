package iam

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

type caseFile []struct {
	Name    string
	Control []struct {
		ID      string
		Scope   string
		Targets []string
		Doc     string
	}
	Custom []struct {
		ID      string
		Targets []string
		Doc     string
	}
	Requests []struct {
		Name      string
		Principal string
		Groups    []string
		Agency    string
		ExpiresIn string `yaml:"expiresIn"`
		Action    string
		Resource  string
		Context   map[string][]string
		Allowed   bool
		Reason    string
		Policy    string
		Statement *int
		Sid       string
	}
}

var testValidator = Validator{}

func TestAuthorize(t *testing.T) {
	data, err := os.ReadFile("testdata/authorize.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Strict: a misspelt key (allowd: true) would otherwise read as false
	// and the case would check the opposite of what it says.
	var cases caseFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("testdata/authorize.yaml has no cases")
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			var control []ControlPolicy
			for _, p := range c.Control {
				pol, err := testValidator.Parse("PolicyDocument", p.Doc, Permission)
				if err != nil {
					t.Fatalf("%s: %v", p.ID, err)
				}
				control = append(control, ControlPolicy{ID: p.ID, Scope: EffectScope(p.Scope), Policy: pol, Targets: p.Targets})
			}
			var custom []CustomPolicy
			for _, p := range c.Custom {
				pol, err := testValidator.Parse("policy", p.Doc, Custom)
				if err != nil {
					t.Fatalf("%s: %v", p.ID, err)
				}
				custom = append(custom, CustomPolicy{ID: p.ID, Policy: pol, Targets: p.Targets})
			}
			a := NewAuthorizer(control, custom)
			for i, r := range c.Requests {
				name := r.Name
				if name == "" {
					name = strings.Join([]string{r.Principal, r.Action, r.Resource}, " ")
				}
				t.Run(name, func(t *testing.T) {
					p := Principal{ID: r.Principal, Groups: r.Groups, Agency: r.Agency}
					if r.ExpiresIn != "" {
						d, err := time.ParseDuration(r.ExpiresIn)
						if err != nil {
							t.Fatal(err)
						}
						p.ExpiresAt = now.Add(d)
					}
					d := a.Authorize(Request{Principal: p, Action: r.Action, Resource: r.Resource, Context: r.Context, Now: now})
					if d.Allowed != r.Allowed {
						t.Fatalf("request %d: got %v, want allowed=%v", i, d, r.Allowed)
					}
					if r.Reason != "" && d.Reason != r.Reason {
						t.Errorf("reason %q, want %q (%v)", d.Reason, r.Reason, d)
					}
					if r.Policy != "" && d.PolicyID != r.Policy {
						t.Errorf("policy %q, want %q", d.PolicyID, r.Policy)
					}
					if r.Statement != nil && d.Statement != *r.Statement {
						t.Errorf("statement %d, want %d", d.Statement, *r.Statement)
					}
					if r.Sid != "" && d.Sid != r.Sid {
						t.Errorf("sid %q, want %q", d.Sid, r.Sid)
					}
				})
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	v := Validator{KnownActions: []string{"imagegate:CreateAttestor"}}
	long := `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Sid":"` + strings.Repeat("x", 4100) + `"}]}`
	cases := []struct {
		name, param, doc string
		kind             Kind
		code, contains   string
	}{
		{"too long", "NewPolicyDocument", long, Permission, "InvalidParameter.NewPolicyDocument.Length", "maximum of 4096"},
		{"not json", "NewPolicyDocument", `{"Version":`, Permission, "InvalidParameter.NewPolicyDocument.Malformed", "not a policy document"},
		{"empty", "PolicyDocument", ` `, Permission, "InvalidParameter.PolicyDocument.Malformed", "empty"},
		{"unknown field", "PolicyDocument", `{"Version":"1","Statement":[],"Extra":1}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "Extra"},
		{"bad version", "PolicyDocument", `{"Version":"2","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "Version"},
		{"no statement", "PolicyDocument", `{"Version":"1","Statement":[]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "at least one"},
		{"bad effect", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"allow","Action":"*","Resource":"*"}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "Statement[0].Effect"},
		{"action and notaction", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "exactly one of Action"},
		{"unknown action", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"imagegate:CreatAttestor","Resource":"*"}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "Statement[0].Action[0]"},
		{"foreign action", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"ram:UpdateRole","Resource":"*"}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "imagegate:<Operation>"},
		{"no resource", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*"}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "Resource"},
		{"bad resource", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"acs:ram:*"}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "Statement[0].Resource[0]"},
		{"resource type", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":7}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "string or a list"},
		{"unknown operator", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"imagegate:Namespace":"a"}}}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "unknown condition operator \"StringEqualz\""},
		{"unknown key", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"imagegate:Cluster":"a"}}}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "unknown condition key \"imagegate:Cluster\""},
		{"bad number", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericEquals":{"imagegate:RuleAction":"x"}}}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "not a number"},
		{"bad ip", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/33"}}}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "CIDR"},
		{"bad date", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"acs:CurrentTime":"tomorrow"}}}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "RFC 3339"},
		{"bad bool", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"acs:SecureTransport":"yes"}}}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "true or false"},
		{"principal in permission policy", "PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"IAM":["x"]},"Action":"*","Resource":"*"}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", "only trust policies"},
		{"trust without principal", "trust_policy", `{"Version":"5.0","Statement":[{"Effect":"Allow","Action":["sts:agencies:assume"]}]}`, Trust, "InvalidParameter.trust_policy.Malformed", "Principal"},
		{"trust with imagegate action", "trust_policy", `{"Version":"5.0","Statement":[{"Effect":"Allow","Action":["imagegate:CreateAttestor"],"Principal":{"IAM":["x"]}}]}`, Trust, "InvalidParameter.trust_policy.Malformed", "sts actions"},
		{"trust policy with a control policy's version", "trust_policy", `{"Version":"1","Statement":[{"Effect":"Allow","Action":["sts:agencies:assume"],"Principal":{"IAM":["x"]}}]}`, Trust, "InvalidParameter.trust_policy.Malformed", `"1": this kind of policy has Version "5.0"`},
		{"custom policy with a trust policy's version", "policy", `{"Version":"5.0","Statement":[{"Effect":"Allow","Action":["*"],"Resource":["*"]}]}`, Custom, "InvalidParameter.policy.Malformed", `has Version "1.1"`},
		{"custom policy with a control policy's version", "policy", `{"Version":"1","Statement":[{"Effect":"Allow","Action":["*"],"Resource":["*"]}]}`, Custom, "InvalidParameter.policy.Malformed", `has Version "1.1"`},
		{"control policy with a custom policy's version", "PolicyDocument", `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`, Permission, "InvalidParameter.PolicyDocument.Malformed", `has Version "1"`},
		// A trust decision has no object: keys describing one would never
		// have a value there, so a Deny on them would never fire.
		{"trust policy on an object's key", "trust_policy", `{"Version":"5.0","Statement":[{"Effect":"Deny","Action":["sts:agencies:assume"],"Principal":{"IAM":["*"]},"Condition":{"StringLike":{"imagegate:ClusterId":"prod-*"}}}]}`, Trust, "InvalidParameter.trust_policy.Malformed", `Statement[0].Condition.StringLike.imagegate:ClusterId: condition key "imagegate:ClusterId" has no value when a trust policy is evaluated`},
		{"trust policy on a strategy's rule action", "trust_policy", `{"Version":"5.0","Statement":[{"Effect":"Allow","Action":["sts:agencies:assume"],"Principal":{"IAM":["*"]},"Condition":{"NumericEquals":{"imagegate:RuleAction":"3"}}}]}`, Trust, "InvalidParameter.trust_policy.Malformed", `"imagegate:RuleAction"`},
		{"trust bad principal type", "trust_policy", `{"Version":"5.0","Statement":[{"Effect":"Allow","Action":["sts:agencies:assume"],"Principal":{"AWS":["x"]}}]}`, Trust, "InvalidParameter.trust_policy.Malformed", "IAM or Service"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Parse(c.param, c.doc, c.kind)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error, got %v", err)
			}
			if e.Code != c.code || !strings.Contains(e.Error(), c.contains) {
				t.Errorf("got %s %q, want %s containing %q", e.Code, e.Error(), c.code, c.contains)
			}
		})
	}
}

func TestDocumentedPoliciesParse(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		kind Kind
	}{
		{"IAM v5 trust policy", `{"Version":"5.0","Statement":[{"Action":["sts:agencies:assume","sts::tagSession","sts::setSourceIdentity"],"Effect":"Allow","Principal":{"IAM":["xxx"]}}]}`, Trust},
		{"IAM v3 custom policy", `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:GetOpaStrategyDetailNew"],"Condition":{"StringStartWith":{"imagegate:ClusterId":["cn-north-1"]}},"Resource":["imagegate:opastrategy/*"]}]}`, Custom},
		{"IAM v3 custom policy without Resource", `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:Get*"]}]}`, Custom},
		{"control policy", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"imagegate:Get*","Resource":"*"}]}`, Permission},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := testValidator.Parse("p", c.doc, c.kind); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTrusts(t *testing.T) {
	p, err := testValidator.Parse("trust_policy", `{"Version":"5.0","Statement":[
		{"Effect":"Allow","Action":["sts:agencies:assume"],"Principal":{"IAM":["ci-bot","group:release"]}},
		{"Effect":"Deny","Action":["sts:*"],"Principal":{"IAM":["ci-bot"]},"Condition":{"NotIpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}]}`, Trust)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		caller Principal
		ip     string
		want   bool
	}{
		{"named principal from inside", Principal{ID: "ci-bot"}, "10.0.0.1", true},
		{"named principal from outside is denied", Principal{ID: "ci-bot"}, "8.8.8.8", false},
		{"group member", Principal{ID: "carol", Groups: []string{"release"}}, "8.8.8.8", true},
		{"stranger", Principal{ID: "mallory"}, "10.0.0.1", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := p.Trusts(c.caller, TrustAction, map[string][]string{KeySourceIP: {c.ip}})
			if d.Allowed != c.want {
				t.Errorf("got %v, want %v", d, c.want)
			}
		})
	}
}

// TestTrustPrincipalKey: imagegate:Principal, accepted in trust policies,
// takes effect there: a Deny on it refuses the caller it names, an Allow
// on it admits only that caller.
func TestTrustPrincipalKey(t *testing.T) {
	deny, err := testValidator.Parse("trust_policy", `{"Version":"5.0","Statement":[
		{"Effect":"Allow","Action":["sts:agencies:assume"],"Principal":{"IAM":["*"]}},
		{"Effect":"Deny","Action":["sts:agencies:assume"],"Principal":{"IAM":["*"]},"Condition":{"StringEquals":{"imagegate:Principal":["mallory"]}}}]}`, Trust)
	if err != nil {
		t.Fatal(err)
	}
	allow, err := testValidator.Parse("trust_policy", `{"Version":"5.0","Statement":[
		{"Effect":"Allow","Action":["sts:agencies:assume"],"Principal":{"IAM":["group:ci"]},"Condition":{"StringLike":{"imagegate:Principal":"ci-*"}}}]}`, Trust)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		policy *Policy
		caller Principal
		want   bool
		reason string
	}{
		{"deny names the caller", deny, Principal{ID: "mallory"}, false, ReasonExplicitDeny},
		{"deny names another caller", deny, Principal{ID: "alice"}, true, ReasonAllow},
		{"allow matches the caller", allow, Principal{ID: "ci-bot", Groups: []string{"ci"}}, true, ReasonAllow},
		{"allow does not match the caller", allow, Principal{ID: "alice", Groups: []string{"ci"}}, false, ReasonImplicitDeny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := c.policy.Trusts(c.caller, TrustAction, map[string][]string{KeySourceIP: {"10.0.0.1"}})
			if d.Allowed != c.want || d.Reason != c.reason {
				t.Errorf("got %v, want allowed=%v (%s)", d, c.want, c.reason)
			}
		})
	}
}

// TestEveryTrustKeyTakesEffect: each key a trust policy may name has a
// value when a trust decision is made, so a Deny on it fires.
func TestEveryTrustKeyTakesEffect(t *testing.T) {
	ctx := map[string][]string{KeySourceIP: {"10.0.0.1"}, KeyCurrentTime: {"2026-06-01T00:00:00Z"}, KeySecureTransport: {"true"}}
	for _, k := range TrustKeys() {
		t.Run(k, func(t *testing.T) {
			p, err := testValidator.Parse("trust_policy", `{"Version":"5.0","Statement":[
				{"Effect":"Allow","Action":["sts:agencies:assume"],"Principal":{"IAM":["*"]}},
				{"Effect":"Deny","Action":["sts:agencies:assume"],"Principal":{"IAM":["*"]},"Condition":{"StringLike":{"`+k+`":"*"}}}]}`, Trust)
			if err != nil {
				t.Fatal(err)
			}
			if d := p.Trusts(Principal{ID: "alice"}, TrustAction, ctx); d.Reason != ReasonExplicitDeny {
				t.Errorf("a Deny on %s did not fire: %v", k, d)
			}
		})
	}
	for _, k := range Keys() {
		if slices.Contains(TrustKeys(), k) {
			continue
		}
		t.Run(k+" is refused", func(t *testing.T) {
			_, err := testValidator.Parse("trust_policy", `{"Version":"5.0","Statement":[{"Effect":"Deny","Action":["sts:agencies:assume"],"Principal":{"IAM":["*"]},"Condition":{"StringLike":{"`+k+`":"*"}}}]}`, Trust)
			var e *Error
			if !errors.As(err, &e) || e.Code != "InvalidParameter.trust_policy.Malformed" || !strings.Contains(e.Msg, k) {
				t.Errorf("got %v", err)
			}
		})
	}
}

// TestNormalized: a custom policy's strings and numbers become the lists
// of strings Huawei Cloud's documents (and SDK models) declare.
func TestNormalized(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"strings become lists", `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":"imagegate:Get*","Resource":"*"}]}`,
			`{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:Get*"],"Resource":["*"]}]}`},
		{"numbers and booleans become strings", `{"Version":"1.1","Statement":[{"Effect":"Deny","Action":["*"],"Condition":{"NumericEquals":{"imagegate:RuleAction":3},"Bool":{"acs:SecureTransport":false}}}]}`,
			`{"Version":"1.1","Statement":[{"Effect":"Deny","Action":["*"],"Condition":{"Bool":{"acs:SecureTransport":["false"]},"NumericEquals":{"imagegate:RuleAction":["3"]}}}]}`},
		{"lists stay", `{"Version":"1.1","Statement":[{"Sid":"s","Effect":"Allow","Action":["imagegate:GetRole","imagegate:List*"],"Resource":["imagegate:role/*"]}]}`,
			`{"Version":"1.1","Statement":[{"Sid":"s","Effect":"Allow","Action":["imagegate:GetRole","imagegate:List*"],"Resource":["imagegate:role/*"]}]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Validator{}.Parse("policy", c.in, Custom)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Normalized(); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			again, err := Validator{}.Parse("policy", p.Normalized(), Custom)
			if err != nil || again.Normalized() != c.want {
				t.Errorf("the normalized form does not parse to itself: %v", err)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true}, {"a*", "abc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*b*d", "abcbd", true}, {"*b*d", "abcbe", false}, {"a**", "a", true}, {"??", "abc", false},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 100), false},
	}
	for _, c := range cases {
		if got := compileMatcher(c.pat).match(c.s); got != c.want {
			t.Errorf("%q ~ %q = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}
