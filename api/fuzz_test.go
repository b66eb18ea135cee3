package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readOnlyStore validates nothing and writes nothing: the fuzz targets
// exercise request decoding, not the directory.
type readOnlyStore struct{ *DirStore }

func (readOnlyStore) Apply(Change) error { return nil }

// fuzzHandler is an API handler as admin would call it, with a log that
// tells a recovered panic from an ordinary refusal.
func fuzzHandler(f *testing.F) (*Handler, *bytes.Buffer) {
	dir := f.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policies"), 0o755); err != nil {
		f.Fatal(err)
	}
	tf := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tf, []byte(testTokens), 0o600); err != nil {
		f.Fatal(err)
	}
	tokens, err := LoadTokens(tf)
	if err != nil {
		f.Fatal(err)
	}
	var log bytes.Buffer
	h, err := NewHandler(readOnlyStore{&DirStore{Dir: filepath.Join(dir, "policies")}}, tokens, filepath.Join(dir, "state.json"),
		WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	if err != nil {
		f.Fatal(err)
	}
	return h, &log
}

func serveFuzz(t *testing.T, h *Handler, log *bytes.Buffer, req *http.Request) {
	log.Reset()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if strings.Contains(log.String(), "panic:") {
		t.Fatalf("%s %s: %s", req.Method, req.URL, log)
	}
	if rec.Code == http.StatusInternalServerError {
		t.Fatalf("%s %s: server error: %s", req.Method, req.URL, rec.Body)
	}
}

// FuzzRPC: any RPC call's parameters (form-encoded, JSON-valued ones
// included) are decoded into an operation or refused with a code.
func FuzzRPC(f *testing.F) {
	for _, s := range []struct{ action, form string }{
		{"CreateAttestor", "Name=a&PublicKeys=%5B%22-----BEGIN+PUBLIC+KEY-----%22%5D&Description=d"},
		{"CreateBinarySecurityPolicy", `Name=p&Policy={"PolicyMode":"enforce","RequiredAttestors":["a"]}&Clusters=[{"ClusterId":"c1"}]`},
		{"CreateOpaStrategyNew", `StrategyName=s&ClusterId=c1&RuleAction=2&ImageName=["a*"]&AlarmDetail={"vul":{"high":["cve"]}}`},
		{"UpdateOpaStrategyNew", "StrategyId=1&RuleAction=x"},
		{"ListOpaClusterStrategyNew", "CurrentPage=2&PageSize=500"},
		{"CreateControlPolicy", `PolicyName=c&PolicyDocument={"Version":"1","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`},
		{"CreateRole", `RoleName=r&PolicyDocument={"Version":"1","Statement":[]}`},
		{"Nope", ""},
	} {
		f.Add(s.action, s.form)
	}
	h, log := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, action, form string) {
		req := httptest.NewRequest(http.MethodPost, "/?Action="+url.QueryEscape(action), strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer admin-token")
		serveFuzz(t, h, log, req)
	})
}

// FuzzREST: any REST body (and path) is decoded strictly or refused.
func FuzzREST(f *testing.F) {
	for _, s := range []struct {
		method uint8
		path   string
		body   string
	}{
		{0, "/v5/agencies", `{"agency":{"name":"a","trust_policy":{"Version":"5.0","Statement":[]}}}`},
		{1, "/v5/agencies/x/trust-policy", `{"trust_policy":"{}"}`},
		{0, "/v5/agencies/x/assume", `{"duration_seconds":900}`},
		{0, "/v3.0/OS-ROLE/roles", `{"role":{"display_name":"r","type":"AX","policy":{"Version":"1.1","Statement":[]}}}`},
		{2, "/v3.0/OS-ROLE/roles/r", `{"role":{"description":7}}`},
		{1, "/v3.0/OS-ROLE/users/u/roles/r", ``},
	} {
		f.Add(s.method, s.path, []byte(s.body))
	}
	methods := []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodGet, http.MethodDelete}
	h, log := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, method uint8, path string, body []byte) {
		u, err := url.Parse(path)
		if err != nil || !strings.HasPrefix(u.Path, "/") || u.Host != "" || u.Scheme != "" {
			return
		}
		// The URL is set after the fact: a path with a space is no request
		// line NewRequest can parse, but a router can still be handed one.
		req := httptest.NewRequest(methods[int(method)%len(methods)], "http://imagegate/", bytes.NewReader(body))
		req.URL, req.RequestURI = u, u.RequestURI()
		req.Header.Set("Content-Type", "application/json;charset=utf8")
		req.Header.Set("X-Auth-Token", "admin-token")
		serveFuzz(t, h, log, req)
	})
}
