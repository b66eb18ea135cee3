package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

// reviewServer answers TokenReviews as the API server does, for callers
// presenting own as their bearer token. The e2e test runs the real one.
func reviewServer(t *testing.T, own string, users map[string][]string) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" || r.Header.Get("Authorization") != "Bearer "+own {
			http.Error(w, `{"kind":"Status","code":403}`, http.StatusForbidden)
			return
		}
		var req struct {
			Kind string
			Spec struct{ Token string }
		}
		json.NewDecoder(r.Body).Decode(&req)
		status := map[string]any{"authenticated": false}
		if groups, ok := users[req.Spec.Token]; ok {
			status = map[string]any{"authenticated": true, "user": map[string]any{"username": groups[0], "groups": groups[1:]}}
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"kind": req.Kind, "status": status})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestTokenReviewer(t *testing.T) {
	srv, calls := reviewServer(t, "imagegate-sa-token", map[string][]string{
		"sa-alice": {"system:serviceaccount:team:alice", "system:serviceaccounts", "system:serviceaccounts:team"},
	})
	ownFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(ownFile, []byte("imagegate-sa-token\n"), 0o600)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tr := &TokenReviewer{Server: srv.URL, Client: srv.Client(), TokenFile: ownFile, TTL: time.Minute, Now: func() time.Time { return now }}
	ctx := context.Background()

	p, ok, err := tr.Authenticate(ctx, "sa-alice")
	if err != nil || !ok || p.ID != "system:serviceaccount:team:alice" || !reflect.DeepEqual(p.Groups, []string{"system:serviceaccounts", "system:serviceaccounts:team"}) {
		t.Fatalf("alice: %+v %v %v", p, ok, err)
	}
	if _, ok, err := tr.Authenticate(ctx, "forged"); ok || err != nil {
		t.Errorf("forged: %v %v", ok, err)
	}
	if _, _, _ = tr.Authenticate(ctx, "sa-alice"); calls.Load() != 2 {
		t.Errorf("answers not reused: %d reviews", calls.Load())
	}
	now = now.Add(2 * time.Minute)
	tr.Authenticate(ctx, "sa-alice")
	if calls.Load() != 3 {
		t.Errorf("expired answer reused: %d reviews", calls.Load())
	}
	os.WriteFile(ownFile, []byte("rotated-wrong"), 0o600)
	if _, ok, err := tr.Authenticate(ctx, "new-token"); ok || err == nil {
		t.Errorf("review refused by the API server must be an error: %v %v", ok, err)
	}
}

// TestHandlerWithTokenReview: the tokens file and TokenReview together; an
// API server that cannot be asked is a ServerError, not a 401.
func TestHandlerWithTokenReview(t *testing.T) {
	srv, _ := reviewServer(t, "own", map[string][]string{"sa-alice": {"system:serviceaccount:team:alice", "system:serviceaccounts:team"}})
	ownFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(ownFile, []byte("own"), 0o600)
	tokFile := filepath.Join(t.TempDir(), "tokens.csv")
	os.WriteFile(tokFile, []byte(testTokens), 0o600)
	tokens, _ := LoadTokens(tokFile)
	tr := &TokenReviewer{Server: srv.URL, Client: srv.Client(), TokenFile: ownFile, TTL: time.Minute, Now: time.Now}
	e := newEnv(t)
	h, err := NewHandler(&DirStore{Dir: e.dir}, Authenticators{tokens, tr}, filepath.Join(t.TempDir(), "s.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Config.Handler = h
	st, body := e.rpc("sa-alice", "DescribeAttestors")
	expect(t, st, body, 403, "NoPermission")
	st, body = e.rest("admin-token", "POST", "/v3.0/OS-ROLE/roles", role("R", readOnly))
	expectREST(t, st, body, 201, "")
	st, body = e.rest("admin-token", "PUT", "/v3.0/OS-ROLE/groups/system:serviceaccounts:team/roles/"+body["role"].(map[string]any)["id"].(string), nil)
	expectREST(t, st, body, 204, "")
	st, body = e.rpc("sa-alice", "DescribeAttestors")
	expect(t, st, body, 200, "")
	st, body = e.rpc("forged", "DescribeAttestors")
	expect(t, st, body, 401, "InvalidToken")
	os.Remove(ownFile)
	st, body = e.rpc("another", "DescribeAttestors")
	expect(t, st, body, 500, "ServerError")
}
