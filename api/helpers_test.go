package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

const testTokens = `# token,principal,groups
admin-token,root,imagegate:admins
alice-token,alice,security|readers
bob-token,bob
ci-token,ci-bot,ci
`

// env is a running API server over a temporary policy directory and state.
type env struct {
	t      testing.TB
	dir    string // policy directory
	state  string
	srv    *httptest.Server
	h      *Handler
	mu     sync.Mutex
	now    time.Time
	events []Event
	pubKey string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, dir: filepath.Join(t.TempDir(), "policies"), now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	if err := os.Mkdir(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tf, []byte(testTokens), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := LoadTokens(tf)
	if err != nil {
		t.Fatal(err)
	}
	e.state = filepath.Join(t.TempDir(), "state.json")
	e.h, err = NewHandler(&DirStore{Dir: e.dir}, tokens, e.state, WithClock(e.clock),
		WithAuditor(func(ev Event) { e.mu.Lock(); e.events = append(e.events, ev); e.mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewTLSServer(e.h)
	t.Cleanup(e.srv.Close)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	e.pubKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return e
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

// rpc posts Action with form parameters and decodes the JSON answer.
func (e *env) rpc(token, action string, kv ...string) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/?Action="+url.QueryEscape(action), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.do(req)
}

func (e *env) rest(token, method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) (int, map[string]any) {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-Request-Id") == "" {
		e.t.Errorf("%s %s: no X-Request-Id header", req.Method, req.URL)
	}
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			e.t.Fatalf("%s %s: %d %s: not JSON: %v", req.Method, req.URL, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, m
}

// expect checks an RPC answer's status, RequestId and code (empty: success).
func expect(t *testing.T, status int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d: %v", status, wantStatus, body)
	}
	if id, _ := body["RequestId"].(string); len(id) != 36 {
		t.Errorf("RequestId %q: %v", id, body)
	}
	if code, _ := body["Code"].(string); wantCode != "" && code != wantCode {
		t.Errorf("code %q, want %q: %v", code, wantCode, body)
	}
}

// expectREST checks a REST answer's status and, for errors, error_code and
// request_id.
func expectREST(t *testing.T, status int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d: %v", status, wantStatus, body)
	}
	if wantCode == "" {
		return
	}
	if id, _ := body["request_id"].(string); len(id) != 36 {
		t.Errorf("request_id %q: %v", id, body)
	}
	if code, _ := body["error_code"].(string); code != wantCode {
		t.Errorf("error_code %q, want %q: %v", code, wantCode, body)
	}
}

// dirState is the policy directory's files and contents.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join(dir, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[en.Name()] = string(b)
	}
	return out
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// restRefusal is a REST call that must be refused with status and code.
type restRefusal struct {
	name, token, method, path string
	body                      any
	status                    int
	code                      string
}

// expectRESTRefusals runs each refusal as a subtest and checks that it left
// the IAM state file as it was.
func (e *env) expectRESTRefusals(t *testing.T, cases []restRefusal) {
	t.Helper()
	for _, c := range cases {
		t.Run("refused: "+c.name, func(t *testing.T) {
			before := readFile(t, e.state)
			st, body := e.rest(c.token, c.method, c.path, c.body)
			expectREST(t, st, body, c.status, c.code)
			if before != readFile(t, e.state) {
				t.Error("a refused change touched the IAM state")
			}
		})
	}
}
