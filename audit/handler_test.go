package audit_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
)

func getEvents(t *testing.T, base, token, query string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/events?"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("body: %v", err)
	}
	return resp.StatusCode, out
}

func TestEventsAPI(t *testing.T) {
	s, err := audit.OpenStore(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	writeSynthetic(t, s, 100)
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/events", &audit.Handler{Store: s, Token: "s3cret", Now: func() time.Time { return t0.Add(100 * time.Minute) }})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	t.Run("unauthenticated", func(t *testing.T) {
		for _, tok := range []string{"", "wrong"} {
			code, body := getEvents(t, srv.URL, tok, "")
			if code != http.StatusUnauthorized || body["error"] == nil {
				t.Errorf("token %q: %d %v, want 401", tok, code, body)
			}
		}
	})
	bad := []struct{ query, says string }{
		{"action=deny", `action "deny": expected one of block, alert, allow, unsigned, error, resolved`},
		{"since=yesterday", `since "yesterday": expected an RFC 3339 time`},
		{"since=1h&until=2h", `since "`},
		{"limit=0", `limit "0": expected a whole number from 1 to 1000`},
		{"pageToken=abc", `pageToken "abc"`},
		{"namespce=x", "unknown parameter namespce"},
		{"namespace=a&namespace=b", "namespace given more than once"},
	}
	for _, tt := range bad {
		t.Run("400 "+tt.query, func(t *testing.T) {
			code, body := getEvents(t, srv.URL, "s3cret", tt.query)
			if msg, _ := body["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, tt.says) {
				t.Errorf("%d %q, want 400 saying %q", code, msg, tt.says)
			}
		})
	}
	t.Run("paging with filters", func(t *testing.T) {
		want := want(100, func(e *audit.Event) bool {
			return e.Namespace == "ns1" && (e.Actions[0] == "block" || e.Actions[0] == "alert")
		})
		var got []string
		v := url.Values{"namespace": {"ns1"}, "action": {"block", "alert"}, "limit": {"4"}}
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("paging does not end")
			}
			code, body := getEvents(t, srv.URL, "s3cret", v.Encode())
			if code != 200 {
				t.Fatalf("%d %v", code, body)
			}
			for _, e := range body["events"].([]any) {
				got = append(got, e.(map[string]any)["uid"].(string))
			}
			next, _ := body["nextPageToken"].(string)
			if next == "" {
				break
			}
			v.Set("pageToken", next)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("since as an age", func(t *testing.T) {
		code, body := getEvents(t, srv.URL, "s3cret", "since=10m")
		if n := len(body["events"].([]any)); code != 200 || n != 10 {
			t.Errorf("%d, %d events, want the last 10 minutes' 10", code, n)
		}
	})
}
