package audit_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
)

// apiEvent is the i-th synthetic API call event: principals and actions
// rotate, every third call refused by a statement. Its id sorts between
// the admissions' (offset by 30 s).
func apiEvent(i int) *audit.Event {
	var id [16]byte
	at := t0.Add(time.Duration(i)*time.Minute + 30*time.Second)
	binary.BigEndian.PutUint64(id[:8], uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(id[8:], uint64(i))
	principals := []string{"alice", "bob", "ci"}
	actions := []string{"imagegate:CreateOpaStrategyNew", "imagegate:ListOpaClusterStrategyNew"}
	c := &audit.APICall{RequestID: fmt.Sprint("req", i), Principal: principals[i%3], Action: actions[i%2],
		Resource: "imagegate:opastrategy/1", Allowed: i%3 != 0, Statement: -1, Status: 200}
	decision := audit.DecisionAllowed
	if !c.Allowed {
		c.PolicyID, c.Statement, c.Status, c.Code, decision = "p-deny", 0, 403, "NoPermission", audit.DecisionDenied
	}
	return &audit.Event{ID: hex.EncodeToString(id[:]), Type: audit.TypeAPI, Time: at, User: audit.User{Username: c.Principal},
		Decision: decision, Actions: []string{}, Images: []audit.ImageEvent{}, API: c}
}

func requestIDs(evs []*audit.Event) []string {
	out := []string{}
	for _, ev := range evs {
		if ev.API == nil {
			out = append(out, "admission:"+ev.UID)
			continue
		}
		out = append(out, ev.API.RequestID)
	}
	return out
}

func wantAPI(n int, keep func(*audit.APICall) bool) []string {
	out := []string{}
	for i := n - 1; i >= 0; i-- {
		if ev := apiEvent(i); keep(ev.API) {
			out = append(out, ev.API.RequestID)
		}
	}
	return out
}

func TestStoreAPICallQueries(t *testing.T) {
	const n = 120
	s, err := audit.OpenStore(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	writeSynthetic(t, s, n)
	var evs []*audit.Event
	for i := range n {
		evs = append(evs, apiEvent(i))
	}
	if err := s.Write(evs); err != nil {
		t.Fatal(err)
	}
	all := func(*audit.APICall) bool { return true }
	cases := []struct {
		name string
		q    audit.Query
		want []string
	}{
		{"all api calls", audit.Query{Type: audit.TypeAPI}, wantAPI(n, all)},
		{"by principal", audit.Query{Principal: "bob"}, wantAPI(n, func(c *audit.APICall) bool { return c.Principal == "bob" })},
		{"by action", audit.Query{Type: audit.TypeAPI, APIActions: []string{"imagegate:CreateOpaStrategyNew"}},
			wantAPI(n, func(c *audit.APICall) bool { return c.Action == "imagegate:CreateOpaStrategyNew" })},
		{"by principal and action", audit.Query{Principal: "alice", APIActions: []string{"imagegate:ListOpaClusterStrategyNew"}},
			wantAPI(n, func(c *audit.APICall) bool {
				return c.Principal == "alice" && c.Action == "imagegate:ListOpaClusterStrategyNew"
			})},
		{"since", audit.Query{Type: audit.TypeAPI, Since: t0.Add(100 * time.Minute)},
			wantAPI(n, func(c *audit.APICall) bool { return c.RequestID >= "req100" && len(c.RequestID) == 6 })},
		{"unknown principal", audit.Query{Principal: "mallory"}, []string{}},
		{"admissions by namespace exclude api", audit.Query{Namespace: "ns1"},
			prefixed(want(n, func(ev *audit.Event) bool { return ev.Namespace == "ns1" }))},
		{"admissions only", audit.Query{Type: audit.TypeAdmission, Limit: audit.MaxLimit},
			prefixed(want(n, func(*audit.Event) bool { return true }))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Limit = 7 // walk the pages
			var got []string
			for pages := 0; ; pages++ {
				if pages > n {
					t.Fatal("paging does not end")
				}
				page, err := s.Query(q)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Events) > 7 {
					t.Fatalf("page of %d events, limit 7", len(page.Events))
				}
				got = append(got, requestIDs(page.Events)...)
				if page.NextPageToken == "" {
					break
				}
				q.PageToken = page.NextPageToken
			}
			if got == nil {
				got = []string{}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %d %v\nwant %d %v", len(got), got, len(tc.want), tc.want)
			}
		})
	}
	t.Run("untyped query has both", func(t *testing.T) {
		page, err := s.Query(audit.Query{Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		got := requestIDs(page.Events)
		wantIDs := []string{fmt.Sprint("req", n-1), fmt.Sprint("admission:u", n-1), fmt.Sprint("req", n-2), fmt.Sprint("admission:u", n-2)}
		if !slices.Equal(got, wantIDs) {
			t.Fatalf("got %v, want %v", got, wantIDs)
		}
		if c := page.Events[0].API; c == nil || c.Allowed != ((n-1)%3 != 0) || page.Events[0].Type != audit.TypeAPI {
			t.Fatalf("api event read back as %+v", page.Events[0])
		}
	})
	t.Run("prune drops api index entries", func(t *testing.T) {
		if _, err := s.Prune(t0.Add(time.Duration(n) * time.Minute)); err != nil {
			t.Fatal(err)
		}
		for _, q := range []audit.Query{{Type: audit.TypeAPI}, {Principal: "alice"}, {APIActions: []string{"imagegate:CreateOpaStrategyNew"}}} {
			page, err := s.Query(q)
			if err != nil || len(page.Events) != 0 {
				t.Fatalf("%+v after prune: %v %v", q, page, err)
			}
		}
	})
}

func prefixed(uids []string) []string {
	out := []string{}
	for _, u := range uids {
		out = append(out, "admission:"+u)
	}
	return out
}

func TestParseQueryAPI(t *testing.T) {
	now := t0
	cases := []struct {
		name    string
		p       audit.QueryParams
		want    audit.Query
		badWant string // the FilterError's parameter, when bad
	}{
		{"type api with action", audit.QueryParams{Type: "api", Action: "imagegate:CreateOpaStrategyNew"},
			audit.Query{Type: audit.TypeAPI, APIActions: []string{"imagegate:CreateOpaStrategyNew"}}, ""},
		{"principal implies api", audit.QueryParams{Principal: "alice"}, audit.Query{Type: audit.TypeAPI, Principal: "alice"}, ""},
		{"api action implies api", audit.QueryParams{Action: "imagegate:A,imagegate:B"},
			audit.Query{Type: audit.TypeAPI, APIActions: []string{"imagegate:A", "imagegate:B"}}, ""},
		{"admission type", audit.QueryParams{Type: "Admission", Action: "block"}, audit.Query{Type: audit.TypeAdmission, Actions: []string{"block"}}, ""},
		{"unknown type", audit.QueryParams{Type: "k8s"}, audit.Query{}, "type"},
		{"api with namespace", audit.QueryParams{Type: "api", Namespace: "ns"}, audit.Query{}, "namespace"},
		{"api with image", audit.QueryParams{Principal: "p", Image: "nginx"}, audit.Query{}, "image"},
		{"api with admission action", audit.QueryParams{Type: "api", Action: "block"}, audit.Query{}, "action"},
		{"admission with principal", audit.QueryParams{Type: "admission", Principal: "p"}, audit.Query{}, "principal"},
		{"mixed actions", audit.QueryParams{Action: "block,imagegate:A"}, audit.Query{}, "action"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := audit.ParseQuery(tc.p, now)
			if tc.badWant != "" {
				var fe *audit.FilterError
				if !errors.As(err, &fe) || fe.Param != tc.badWant {
					t.Fatalf("err %v, want a FilterError on %s", err, tc.badWant)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q.Type != tc.want.Type || q.Principal != tc.want.Principal || !slices.Equal(q.APIActions, tc.want.APIActions) || !slices.Equal(q.Actions, tc.want.Actions) {
				t.Fatalf("got %+v, want %+v", q, tc.want)
			}
		})
	}
}

// TestRecorderAPICalls records API calls through a real recorder into a
// real store and a JSON lines writer, next to an admission.
func TestRecorderAPICalls(t *testing.T) {
	st, err := audit.OpenStore(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	rec, err := audit.NewRecorder([]audit.Sink{st, audit.NewWriterSink(&lines)}, audit.WithClusterID("c1"))
	if err != nil {
		t.Fatal(err)
	}
	rec.RecordAPICall(audit.APICall{RequestID: "r1", Principal: "alice", Groups: []string{"imagegate:admins"}, Action: "imagegate:CreateOpaStrategyNew",
		Resource: "imagegate:opastrategy/3", Allowed: true, Decision: "allowed (administrator)", Statement: -1, SourceIP: "10.0.0.1", Status: 200})
	rec.RecordAPICall(audit.APICall{RequestID: "r2", Principal: "bob", Action: "imagegate:DeleteOpaStrategyNew", Resource: "imagegate:opastrategy/3",
		Decision: "refused (explicit deny) by p1 Statement[0]", PolicyID: "p1", Statement: 0, Status: 403, Code: "NoPermission"})
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	page, err := st.Query(audit.Query{Type: audit.TypeAPI})
	if err != nil {
		t.Fatal(err)
	}
	if got := requestIDs(page.Events); !slices.Equal(got, []string{"r2", "r1"}) {
		t.Fatalf("store has %v, want [r2 r1]", got)
	}
	refused := page.Events[0]
	if refused.Decision != audit.DecisionDenied || refused.API.PolicyID != "p1" || refused.API.Statement != 0 || refused.ClusterID != "c1" {
		t.Fatalf("refused call stored as %+v / %+v", refused, refused.API)
	}
	if ok := page.Events[1]; ok.Decision != audit.DecisionAllowed || ok.User.Username != "alice" || ok.API.SourceIP != "10.0.0.1" {
		t.Fatalf("allowed call stored as %+v / %+v", ok, ok.API)
	}
	sc := bufio.NewScanner(&lines)
	var n int
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		api, _ := ev["api"].(map[string]any)
		if ev["type"] != "api" || api == nil || api["principal"] == nil || api["action"] == nil {
			t.Fatalf("JSON line %s lacks the api call", sc.Text())
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d JSON lines, want 2", n)
	}
}

func TestEventsAPITypeFilter(t *testing.T) {
	s, err := audit.OpenStore(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	writeSynthetic(t, s, 30)
	if err := s.Write([]*audit.Event{apiEvent(1), apiEvent(2), apiEvent(4)}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&audit.Handler{Store: s, Token: "t", Now: func() time.Time { return t0.Add(time.Hour) }})
	defer srv.Close()
	cases := []struct {
		query string
		code  int
		n     int
	}{
		{"type=api", http.StatusOK, 3},
		{"type=api&principal=bob", http.StatusOK, 2},
		{"principal=bob&action=imagegate:ListOpaClusterStrategyNew", http.StatusOK, 1},
		{"type=admission&limit=1000", http.StatusOK, 30},
		{"type=api&namespace=ns1", http.StatusBadRequest, 0},
		{"type=workload", http.StatusBadRequest, 0},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			code, body := getEvents(t, srv.URL, "t", tc.query)
			if code != tc.code {
				t.Fatalf("%d %v, want %d", code, body, tc.code)
			}
			if code == http.StatusOK {
				if evs, _ := body["events"].([]any); len(evs) != tc.n {
					t.Fatalf("%d events, want %d", len(evs), tc.n)
				}
			} else if body["error"] == nil {
				t.Fatalf("no error in %v", body)
			}
		})
	}
}
