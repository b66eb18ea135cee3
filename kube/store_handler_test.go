package kube

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestHandlerOverStore runs the management API handler over the store (the
// API server is client-go's fake here; test/e2e runs the real one): a
// strategy created through the API is a custom resource; a broken object
// in the cluster makes reads fail with ServerError rather than show a
// partial set.
func TestHandlerOverStore(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte("admin-token,root,imagegate:admins\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := api.LoadTokens(tokens)
	if err != nil {
		t.Fatal(err)
	}
	client := storeClient(t, seedStrategy)
	h, err := api.NewHandler(NewStore(client), auth, filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	call := func(action string, kv ...string) (int, map[string]any) {
		t.Helper()
		form := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			form.Set(kv[i], kv[i+1])
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/?Action="+action, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer admin-token")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}
	steps := []struct {
		name   string
		before func()
		action string
		kv     []string
		status int
		code   string
	}{
		{"create", nil, "CreateOpaStrategyNew", []string{"StrategyName", "n", "RuleAction", "2", "ClusterId", "c1"}, 200, "200"},
		{"invalid rule action refused", nil, "UpdateOpaStrategyNew", []string{"StrategyId", "6", "RuleAction", "9"}, 400, "InvalidParameter.RuleAction"},
		{"a broken object fails reads", func() {
			if _, err := client.Resource(strategyGVR()).Create(context.Background(), fromYAML(t, brokenStrategy), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}, "ListOpaClusterStrategyNew", nil, 500, "ServerError"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before()
			}
			status, body := call(st.action, st.kv...)
			if status != st.status || body["Code"] != st.code {
				t.Fatalf("%s: %d %v, want %d %s", st.action, status, body, st.status, st.code)
			}
		})
	}
	u, err := client.Resource(strategyGVR()).Get(context.Background(), "opastrategy-6", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the strategy created through the API is no custom resource: %v", err)
	}
	if a, _, _ := unstructured.NestedInt64(u.Object, "spec", "ruleAction"); a != 2 {
		t.Errorf("ruleAction %d: the refused update was written", a)
	}
}
