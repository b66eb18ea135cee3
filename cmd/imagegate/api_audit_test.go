package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/audit"
)

// TestServeAPIAudit runs the real binary with the management API and the
// audit store: allowed and refused API calls become api events in the store
// (read by imagegate events while serve runs) and the JSON-lines file, each
// naming the policy statement that decided it.
func TestServeAPIAudit(t *testing.T) {
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	cert, key := selfSignedCert(t, dir)
	tokens := filepath.Join(dir, "tokens.csv")
	os.WriteFile(tokens, []byte("admin-secret,root,imagegate:admins\nalice-secret,alice,security\n"), 0o600)
	store, logFile := filepath.Join(dir, "audit.db"), filepath.Join(dir, "audit.log")
	listen, apiListen := freePort(t), freePort(t)
	cmd := exec.Command(binary, "serve", "--policies", policies, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--listen", listen, "--metrics-listen", "", "--policy-poll-interval", "100ms",
		"--api-listen", apiListen, "--api-tokens", tokens, "--api-state", filepath.Join(dir, "iam.json"),
		"--audit-store", store, "--audit-log", logFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	client := serveClient()
	waitReady(t, client, listen)
	call := apiCaller(t, client, apiListen)
	// A control policy bounding everyone, administrators too: no allow rules.
	st, body := call("admin-secret", "CreateControlPolicy", "PolicyName", "NoAllowRules", "Description", "No-allow-rules", "EffectScope", "All",
		"PolicyDocument", `{"Version":"1","Statement":[{"Effect":"Deny","Action":"imagegate:CreateOpaStrategyNew","Resource":"*","Condition":{"NumericEquals":{"imagegate:RuleAction":3}}}]}`)
	if st != 200 {
		t.Fatalf("CreateControlPolicy: %d %v", st, body)
	}
	cpID, _ := body["ControlPolicy"].(map[string]any)["PolicyId"].(string)
	if st, body = call("admin-secret", "AttachControlPolicy", "PolicyId", cpID, "TargetId", "*"); st != 200 {
		t.Fatalf("AttachControlPolicy: %d %v", st, body)
	}
	st, body = call("admin-secret", "CreateOpaStrategyNew", "StrategyName", "block-bad", "RuleAction", "2", "ClusterId", "c1", "ImageName", `["bad-*"]`)
	if st != 200 {
		t.Fatalf("allowed create: %d %v", st, body)
	}
	allowedID := body["RequestId"]
	st, body = call("admin-secret", "CreateOpaStrategyNew", "StrategyName", "allow-all", "RuleAction", "3", "ClusterId", "c1", "ImageName", `["*"]`)
	if st != 403 || body["Code"] != "NoPermission" {
		t.Fatalf("refused create: %d %v", st, body)
	}
	refusedID := body["RequestId"]
	if st, body = call("alice-secret", "ListOpaClusterStrategyNew"); st != 403 {
		t.Fatalf("alice: %d %v", st, body)
	}

	query := func(args ...string) []*audit.Event {
		t.Helper()
		out, errOut, code := runCLI(t, "", append([]string{"events", "--store", store, "-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("events %v: exit %d: %s", args, code, errOut)
		}
		var page audit.Page
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatal(err)
		}
		return page.Events
	}
	waitFor(t, "five API calls in the store", func() bool { return len(query("--type", "api")) == 5 })

	cases := []struct {
		name string
		args []string
		want []any // request ids, newest first
	}{
		{"creates", []string{"--type", "api", "--action", "imagegate:CreateOpaStrategyNew", "--since", "1h"}, []any{refusedID, allowedID}},
		{"by principal", []string{"--principal", "root", "--action", "imagegate:CreateOpaStrategyNew"}, []any{refusedID, allowedID}},
		{"alice", []string{"--principal", "alice"}, nil},
		{"admissions only", []string{"--type", "admission"}, []any{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs := query(tc.args...)
			if tc.want == nil {
				if len(evs) != 1 || evs[0].API.Principal != "alice" || evs[0].API.Code != "NoPermission" || evs[0].API.Action != "imagegate:ListOpaClusterStrategyNew" {
					t.Fatalf("alice's calls: %+v", evs)
				}
				return
			}
			var got []any
			for _, ev := range evs {
				got = append(got, ev.API.RequestID)
			}
			if len(got) != len(tc.want) || (len(got) > 0 && (got[0] != tc.want[0] || got[len(got)-1] != tc.want[len(tc.want)-1])) {
				t.Fatalf("request ids %v, want %v", got, tc.want)
			}
		})
	}

	evs := query("--principal", "root", "--action", "imagegate:CreateOpaStrategyNew")
	refused, allowed := evs[0].API, evs[1].API
	if evs[0].Decision != audit.DecisionDenied || refused.Allowed || refused.PolicyID != cpID || refused.Statement != 0 ||
		!strings.Contains(refused.Decision, cpID+" Statement[0]") || refused.SourceIP != "127.0.0.1" || refused.Status != 403 {
		t.Errorf("refused call: %+v", refused)
	}
	if evs[1].Decision != audit.DecisionAllowed || !allowed.Allowed || allowed.Status != 200 || allowed.Code != "" ||
		!strings.HasPrefix(allowed.Resource, "imagegate:opastrategy/") || len(allowed.Groups) != 1 || allowed.Groups[0] != "imagegate:admins" {
		t.Errorf("allowed call: %+v", allowed)
	}
	out, _, code := runCLI(t, "", "events", "--store", store, "--type", "api", "--principal", "root")
	if code != 0 || !strings.Contains(out, "DECIDED BY") || !strings.Contains(out, cpID+" Statement[0]") || !strings.Contains(out, refusedID.(string)) {
		t.Errorf("table: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, "", "events", "--store", store)
	if code != 0 || !strings.Contains(out, "imagegate:ListOpaClusterStrategyNew") || !strings.Contains(out, "refused (ImplicitDeny)") {
		t.Errorf("table of both kinds: exit %d\n%s", code, out)
	}
	if _, errOut, code := runCLI(t, "", "events", "--store", store, "--type", "api", "--namespace", "x"); code == 0 || !strings.Contains(errOut, "--namespace") {
		t.Errorf("--type api --namespace: exit %d %s", code, errOut)
	}
	raw, err := os.ReadFile(logFile)
	if err != nil || strings.Count(string(raw), `"type":"api"`) != 5 || !strings.Contains(string(raw), refusedID.(string)) {
		t.Errorf("audit log has not the 5 API calls: %v\n%s", err, raw)
	}
}
