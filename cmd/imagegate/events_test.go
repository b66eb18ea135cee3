package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
)

// TestServeAudit runs the real binary with every audit sink: a blocked and
// an alerted admission reach the JSON-lines file, the store (read by
// imagegate events while serve runs) and GET /api/v1/events; a plain pass
// reaches none.
func TestServeAudit(t *testing.T) {
	dir := t.TempDir()
	logFile, store, tokenFile := filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit.db"), filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	os.WriteFile(filepath.Join(policies, "p.yaml"), []byte(`apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-bad}
spec: {strategyId: 1, strategyName: no bad, clusterId: c1, ruleAction: 2, imageName: ["bad-*"]}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: alert-noisy}
spec: {strategyId: 2, clusterId: c1, ruleAction: 1, imageName: ["noisy"]}
`), 0o644)
	cert, key := selfSignedCert(t, dir)
	listen, metrics := freePort(t), freePort(t)
	cmd := exec.Command(binary, "serve", "--policies", policies, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--listen", listen, "--metrics-listen", metrics, "--audit-log", logFile, "--audit-store", store, "--audit-token-file", tokenFile, "--audit-sync")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	client := serveClient()
	base := "https://" + listen
	waitReady(t, client, listen)
	admit := func(uid, ns, image string) {
		body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"` + uid + `","kind":{"kind":"Pod"},"name":"p-` + uid +
			`","namespace":"` + ns + `","operation":"CREATE","userInfo":{"username":"bob","groups":["ops"]},` +
			`"object":{"kind":"Pod","metadata":{"name":"p-` + uid + `"},"spec":{"containers":[{"name":"c","image":"` + image + `"}]}}}}`
		resp, err := client.Post(base+"/validate", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	admit("u1", "shop", "bad-app:1")
	admit("u2", "shop", "good:1")
	admit("u3", "web", "noisy:2")

	lines := func() []audit.Event {
		f, err := os.Open(logFile)
		if err != nil {
			return nil
		}
		defer f.Close()
		var evs []audit.Event
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var ev audit.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("audit log line %q: %v", sc.Text(), err)
			}
			evs = append(evs, ev)
		}
		return evs
	}
	waitFor(t, "two events in the audit log", func() bool { return len(lines()) == 2 })
	evs := lines()
	if evs[0].UID != "u1" || evs[0].Decision != "denied" || evs[0].Images[0].Strategies[0].Name != "no bad" || evs[0].User.Username != "bob" ||
		evs[1].UID != "u3" || evs[1].Actions[0] != "alert" || evs[1].ClusterID != "c1" {
		t.Errorf("audit log: %+v", evs)
	}

	t.Run("imagegate events while serve runs", func(t *testing.T) {
		tests := []struct {
			args []string
			want []string // in order
			not  []string
		}{
			{[]string{}, []string{"u3", "u1"}, []string{"u2"}},
			{[]string{"--namespace", "shop"}, []string{"u1"}, []string{"u3"}},
			{[]string{"--cluster", "c1"}, []string{"u3", "u1"}, nil},
			{[]string{"--cluster", "another-cluster"}, nil, []string{"u1", "u3"}},
			{[]string{"--action", "alert"}, []string{"u3"}, []string{"u1"}},
			{[]string{"--image", "bad-*", "--since", "1h"}, []string{"u1"}, []string{"u3"}},
		}
		for _, tt := range tests {
			t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
				out, errOut, code := runCLI(t, "", append([]string{"events", "--store", store, "-o", "json"}, tt.args...)...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				var page audit.Page
				if err := json.Unmarshal([]byte(out), &page); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, ev := range page.Events {
					got = append(got, ev.UID)
				}
				if strings.Join(got, ",") != strings.Join(tt.want, ",") {
					t.Errorf("events %v, want %v", got, tt.want)
				}
			})
		}
		out, _, code := runCLI(t, "", "events", "--store", store)
		if code != 0 || !strings.Contains(out, "TIME") || !strings.Contains(out, "shop") || !strings.Contains(out, "Pod/p-u1") ||
			!strings.Contains(out, "bad-app:1 (block)") || !strings.Contains(out, "bob") {
			t.Errorf("table: exit %d\n%s", code, out)
		}
	})

	t.Run("GET /api/v1/events", func(t *testing.T) {
		get := func(token, query string) (int, string) {
			req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/events?"+query, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			b, _ := json.Marshal(out)
			return resp.StatusCode, string(b)
		}
		tests := []struct {
			name, token, query string
			code               int
			says               string
		}{
			{"no token", "", "", 401, "missing or wrong bearer token"},
			{"filtered", "s3cret", "namespace=web&action=alert", 200, `"uid":"u3"`},
			{"bad range", "s3cret", "since=2026-12-01T00:00:00Z&until=2026-11-01T00:00:00Z", 400, "not after until"},
			{"paging", "s3cret", "limit=1", 200, `"nextPageToken"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if code, body := get(tt.token, tt.query); code != tt.code || !strings.Contains(body, tt.says) {
					t.Errorf("%d %s, want %d with %s", code, body, tt.code, tt.says)
				}
			})
		}
	})
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	found := map[string]bool{}
	for sc.Scan() {
		for _, m := range []string{"imagegate_audit_events_dropped_total 0", `imagegate_audit_events_total{sink="file"} 2`, `imagegate_audit_events_total{sink="store"} 2`} {
			if sc.Text() == m {
				found[m] = true
			}
		}
	}
	if len(found) != 3 {
		t.Errorf("metrics: found only %v", found)
	}
}

func TestEventsFlagErrors(t *testing.T) {
	store := filepath.Join(t.TempDir(), "audit.db")
	if _, err := audit.OpenStore(store); err != nil { // an empty store
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		says string
	}{
		{[]string{"events"}, "required: --store"},
		{[]string{"events", "--store", filepath.Join(t.TempDir(), "missing.db")}, "--store: stat"},
		{[]string{"events", "--store", store, "--action", "deny"}, `--action "deny": expected one of block, alert, allow, unsigned, error, resolved`},
		{[]string{"events", "--store", store, "--since", "tomorrow"}, `--since "tomorrow": expected an RFC 3339 time`},
		{[]string{"events", "--store", store, "--limit", "0"}, `--limit "0": expected a whole number from 1 to 1000`},
		{[]string{"events", "--store", store, "-o", "yaml"}, `-o "yaml": expected table or json`},
		{[]string{"events", "--store", store, "--page-token", "x"}, `--page-token "x"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			_, errOut, code := runCLI(t, "", tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.says) {
				t.Errorf("exit %d %q, want 2 saying %q", code, errOut, tt.says)
			}
		})
	}
	out, _, code := runCLI(t, "", "events", "--store", store, "-o", "json")
	if code != 0 || !strings.Contains(out, `"events": []`) {
		t.Errorf("empty store: exit %d %s", code, out)
	}
}

func TestServeAuditFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		says string
	}{
		{[]string{"--audit-token-file", "/nonexistent"}, "--audit-token-file needs --audit-store"},
		{[]string{"--audit-sync"}, "--audit-sync needs --audit-store or --audit-log"},
		{[]string{"--audit-retention", "0s", "--audit-store", "x.db"}, "--audit-retention 0s: expected a positive duration"},
		{[]string{"--audit-log-max-size", "-1", "--audit-log", "-"}, "--audit-log-max-size -1: expected 0 or more bytes"},
		{[]string{"--audit-log", "/nonexistent-dir/audit.log"}, "--audit-log: audit log: open /nonexistent-dir/audit.log"},
		{[]string{"--audit-kube-events", "--audit-kubeconfig", "/nonexistent/kubeconfig"}, "--audit-kubeconfig: stat /nonexistent/kubeconfig"},
	}
	for _, tt := range tests {
		t.Run(tt.says, func(t *testing.T) {
			dir := t.TempDir()
			cert, key := selfSignedCert(t, dir)
			args := append([]string{"serve", "--policies", "examples/policies", "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
				"--listen", "127.0.0.1:0", "--metrics-listen", ""}, tt.args...)
			_, errOut, code := runCLI(t, "", args...)
			if code != 2 || !strings.Contains(errOut, tt.says) {
				t.Errorf("exit %d %q, want 2 saying %q", code, errOut, tt.says)
			}
		})
	}
}

// TestAPICallTableShowsSummaries: a summary of refused calls says how many
// it stands for and until when.
func TestAPICallTableShowsSummaries(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	page := &audit.Page{Events: []*audit.Event{
		{Type: audit.TypeAPI, Time: at, Count: 58999, Until: at.Add(15 * time.Second),
			API: &audit.APICall{SourceIP: "10.0.0.1", Status: 401, Code: "InvalidToken", Statement: -1}},
		{Type: audit.TypeAPI, Time: at, API: &audit.APICall{Principal: "root", Status: 200, Decision: "allowed (Admin)"}},
	}}
	for name, print := range map[string]func(io.Writer, *audit.Page){"api": printAPICalls, "both": printEvents} {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			print(&b, page)
			if !strings.Contains(b.String(), "[58999 refused calls like this until 2026-11-23T10:00:15Z]") || !strings.Contains(b.String(), "allowed (Admin)\n") {
				t.Errorf("table:\n%s", b.String())
			}
		})
	}
}

// imagegate events --type runtime reads runtime events from the store and
// prints what changed and after what.
func TestEventsRuntimeType(t *testing.T) {
	store := filepath.Join(t.TempDir(), "audit.db")
	rec, err := newRuntimeRecorder(store)
	if err != nil {
		t.Fatal(err)
	}
	rec.RecordRuntime(context.Background(), audit.Runtime{Namespace: "prod", Kind: "Deployment", Name: "web",
		Change: audit.RuntimeChange{Change: "resolved", Trigger: "malicious", Detail: "sha256:aa", Pods: 3, Previous: "block"}})
	rec.Close()
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"events", "--store", store, "--type", "runtime"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "Deployment/web") || !strings.Contains(out.String(), "resolved") || !strings.Contains(out.String(), "malicious: sha256:aa") {
		t.Errorf("table:\n%s", out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"events", "--store", store, "--type", "admission"}, strings.NewReader(""), &out, &errb); code != 0 || strings.Contains(out.String(), "web") {
		t.Errorf("admission query shows runtime events (exit %d):\n%s", code, out.String())
	}
}

func newRuntimeRecorder(path string) (*audit.Recorder, error) {
	st, err := audit.OpenStore(path)
	if err != nil {
		return nil, err
	}
	return audit.NewRecorder([]audit.Sink{st})
}
