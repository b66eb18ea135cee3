package console_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/api"
	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/audit/storetest"
	"github.com/imagegate/imagegate/check"
	"github.com/imagegate/imagegate/console"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
)

const testPolicies = `
apiVersion: imagegate.dev/v1alpha1
kind: Attestor
metadata: {name: ci}
spec:
  publicKeys:
  - |
    -----BEGIN PUBLIC KEY-----
    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEIEJtfaDTtTritO+MNkbZLBxG4rhE
    0VQLFXCgAwbSMd7b7p+/K+u/1FjgzBNFIHND2REgSekA9rp57JunJDg0OQ==
    -----END PUBLIC KEY-----
---
apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: signed}
spec:
  policy: {requiredAttestors: [ci]}
  clusters: [{clusterId: c1, namespaces: [secure]}]
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-bad}
spec: {strategyId: 1, strategyName: block bad, clusterId: c1, ruleAction: 2, imageName: ["bad-*"]}
`

const testFacts = `
images:
  "registry.example.com/team/app:2":
    digest: sha256:2222222222222222222222222222222222222222222222222222222222222222
    attestorErrors: {ci: "no matching signatures"}
`

const testTokens = `admin-token,root,imagegate:admins
team-token,tina,team
nobody-token,nobody
`

// teamPolicy lets the team read the events of namespace ns1 only.
const teamPolicy = `{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:ListEvents"],"Resource":["*"],
"Condition":{"StringEquals":{"imagegate:Namespace":["ns1"]}}}]}`

// env is a console over a real management API (tokens file, IAM state,
// policy directory), a bbolt audit store holding synthetic events and the
// check engine, served over TLS.
type env struct {
	t       *testing.T
	srv     *httptest.Server
	con     *console.Server
	apiH    *api.Handler
	tokens  string
	mu      sync.Mutex
	audited []api.Event
	now     time.Time
	nEvents int
}

func newEnv(t *testing.T, opts ...console.Option) *env {
	t.Helper()
	return newEnvWith(t, nil, opts...)
}

// newEnvWith is newEnv with another authenticator after the tokens file
// (a TokenReviewer).
func newEnvWith(t *testing.T, extra api.Authenticator, opts ...console.Option) *env {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	must(t, os.Mkdir(pol, 0o755))
	must(t, os.WriteFile(filepath.Join(pol, "p.yaml"), []byte(testPolicies), 0o600))
	e := &env{t: t, tokens: filepath.Join(dir, "tokens.csv"), now: storetest.T0.Add(12 * time.Hour), nEvents: 300}
	must(t, os.WriteFile(e.tokens, []byte(testTokens), 0o600))
	tokens, err := api.LoadTokens(e.tokens)
	must(t, err)
	tokens.ReloadEvery = 0
	auth := api.Authenticators{tokens}
	if extra != nil {
		auth = append(auth, extra)
	}
	e.apiH, err = api.NewHandler(&api.DirStore{Dir: pol}, auth, filepath.Join(dir, "state.json"), api.WithClock(e.clock),
		api.WithAuditor(func(ev api.Event) { e.mu.Lock(); e.audited = append(e.audited, ev); e.mu.Unlock() }))
	must(t, err)
	e.grantTeam()

	store, err := audit.OpenStore(filepath.Join(dir, "audit.db"))
	must(t, err)
	storetest.Write(t, store, e.nEvents)

	objs, err := policy.Parse("p.yaml", []byte(testPolicies))
	must(t, err)
	snap, err := policy.NewSnapshot(objs...)
	must(t, err)
	eng, err := rego.New(context.Background(), snap, rego.WithClusterID("c1"))
	must(t, err)
	f, err := facts.ParseFile([]byte(testFacts))
	must(t, err)
	checker := &console.ManifestChecker{Checker: &check.Checker{Decider: admission.NewDecider(admission.Static{E: eng}, f), Timeout: 5 * time.Second}}

	all := append([]console.Option{console.WithClock(e.clock), console.WithEvents(store), console.WithChecker(checker),
		console.WithCounters(func() map[string]float64 { return map[string]float64{"imagegate_audit_events_dropped_total": 3} })}, opts...)
	e.con, err = console.New(e.apiH, all...)
	must(t, err)
	e.srv = httptest.NewTLSServer(e.con)
	t.Cleanup(e.srv.Close)
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// grantTeam creates the team's role and attaches it, through the API.
func (e *env) grantTeam() {
	body, _ := json.Marshal(map[string]any{"role": map[string]any{"display_name": "TeamEvents", "type": "AX", "description": "team events", "policy": json.RawMessage(teamPolicy)}})
	r := httptest.NewRequest(http.MethodPost, "https://api/v3.0/OS-ROLE/roles", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json;charset=utf8")
	r.Header.Set("X-Auth-Token", "admin-token")
	w := httptest.NewRecorder()
	e.apiH.ServeHTTP(w, r)
	var out struct{ Role struct{ ID string } }
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &out) != nil {
		e.t.Fatalf("create role: %d %s", w.Code, w.Body)
	}
	r = httptest.NewRequest(http.MethodPut, "https://api/v3.0/OS-ROLE/groups/team/roles/"+out.Role.ID, nil)
	r.Header.Set("X-Auth-Token", "admin-token")
	w = httptest.NewRecorder()
	e.apiH.ServeHTTP(w, r)
	if w.Code != http.StatusNoContent {
		e.t.Fatalf("attach role: %d %s", w.Code, w.Body)
	}
}

// browser is a client with a cookie jar that sends the console's Origin.
type browser struct {
	e      *env
	c      *http.Client
	origin string
	csrf   string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := e.srv.Client()
	c = &http.Client{Transport: c.Transport.(*http.Transport).Clone(), Jar: jar}
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test server's own certificate
	return &browser{e: e, c: c, origin: e.srv.URL}
}

func (b *browser) do(method, path, ctype, body string, hdr ...string) (int, map[string]any, http.Header) {
	b.e.t.Helper()
	req, _ := http.NewRequest(method, b.e.srv.URL+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	if b.csrf != "" {
		req.Header.Set(console.CSRFHeader, b.csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, resp.Header
}

func (b *browser) signIn(token string) (int, map[string]any, http.Header) {
	b.e.t.Helper()
	st, out, h := b.do(http.MethodPost, "/api/login", "application/json", `{"token":"`+token+`"}`)
	if st == http.StatusOK {
		b.csrf, _ = out["csrf"].(string)
	}
	return st, out, h
}

func (b *browser) get(path string) (int, map[string]any) {
	b.e.t.Helper()
	st, out, _ := b.do(http.MethodGet, path, "", "")
	return st, out
}

// records counts the API call records of action by principal, allowed or not.
func (e *env) records(principal, action string, allowed bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.audited {
		if ev.Principal == principal && ev.Action == action && ev.Allowed == allowed {
			n++
		}
	}
	return n
}
