package api

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/client-go/rest"
)

// reviewServer answers TokenReviews as the API server does, for callers
// presenting own as their bearer token. The e2e test runs the real one.
func reviewServer(t *testing.T, own string, users map[string][]string) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" || r.Header.Get("Authorization") != "Bearer "+own {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}, Status: metav1.StatusFailure,
				Reason: metav1.StatusReasonForbidden, Code: http.StatusForbidden, Message: "tokenreviews.authentication.k8s.io is forbidden"})
			return
		}
		// client-go may send protobuf; the deserializer reads both.
		body, _ := io.ReadAll(r.Body)
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
		req, ok := obj.(*authnv1.TokenReview)
		if err != nil || !ok || gvk.GroupVersion() != authnv1.SchemeGroupVersion {
			t.Errorf("request %v %v (%s): want an authentication.k8s.io/v1 TokenReview", gvk, err, r.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		req.APIVersion, req.Kind = "authentication.k8s.io/v1", "TokenReview"
		req.Status = authnv1.TokenReviewStatus{}
		if groups, ok := users[req.Spec.Token]; ok {
			req.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: groups[0], Groups: groups[1:]}}
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(req)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// reviewsFor is client-go's typed TokenReviews client for srv, presenting
// the token in ownFile, as serve builds it.
func reviewsFor(t *testing.T, srv *httptest.Server, ownFile string) TokenReviews {
	t.Helper()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c, err := authnclient.NewForConfig(&rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}, BearerTokenFile: ownFile, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c.TokenReviews()
}

func TestTokenReviewer(t *testing.T) {
	srv, calls := reviewServer(t, "imagegate-sa-token", map[string][]string{
		"sa-alice": {"system:serviceaccount:team:alice", "system:serviceaccounts", "system:serviceaccounts:team"},
	})
	ownFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(ownFile, []byte("imagegate-sa-token\n"), 0o600)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tr := &TokenReviewer{Reviews: reviewsFor(t, srv, ownFile), TTL: time.Minute, Now: func() time.Time { return now }}
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

	wrongFile := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrongFile, []byte("not-allowed-to-review"), 0o600)
	refused := &TokenReviewer{Reviews: reviewsFor(t, srv, wrongFile), TTL: time.Minute, Now: time.Now}
	_, ok, err = refused.Authenticate(ctx, "sa-alice")
	if ok || !apierrors.IsForbidden(err) || !strings.HasPrefix(err.Error(), "token review: ") {
		t.Errorf("review refused by the API server: %v %v; want a wrapped Forbidden StatusError", ok, err)
	}
	if _, _, err := refused.Authenticate(ctx, "sa-alice"); err == nil {
		t.Error("a failed review was cached")
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
	tr := &TokenReviewer{Reviews: reviewsFor(t, srv, ownFile), TTL: time.Minute, Now: time.Now}
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
	srv.Close() // the API server cannot be asked
	st, body = e.rpc("another", "DescribeAttestors")
	expect(t, st, body, 500, "ServerError")
}

// TestTokenReviewerDeadline: a hanging API server holds a review no longer
// than the caller's deadline, and a review that did not finish is not
// remembered as an answer.
func TestTokenReviewerDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	ownFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(ownFile, []byte("own"), 0o600)
	tr := &TokenReviewer{Reviews: reviewsFor(t, srv, ownFile), TTL: time.Minute, Now: time.Now}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, ok, err := tr.Authenticate(ctx, "sa-alice")
	if ok || err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("ok %v err %v after %v; want an error soon after the 200ms deadline", ok, err, time.Since(start))
	}
	if len(tr.cache) != 0 {
		t.Errorf("an unfinished review was cached: %v", tr.cache)
	}
}
