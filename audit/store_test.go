package audit_test

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// synthetic is the i-th of a set of events spread one minute apart over
// namespaces, actions and images.
func synthetic(i int) *audit.Event {
	var id [16]byte
	at := t0.Add(time.Duration(i) * time.Minute)
	binary.BigEndian.PutUint64(id[:8], uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(id[8:], uint64(i))
	actions := []string{"block", "alert", "allow", "unsigned", "error"}
	a := actions[i%5]
	decision := "allowed"
	if a == "block" || a == "unsigned" {
		decision = "denied"
	}
	return &audit.Event{
		ID: hex.EncodeToString(id[:]), Time: at, ClusterID: "c1", UID: fmt.Sprint("u", i), Operation: "CREATE",
		Kind: "Pod", Namespace: fmt.Sprint("ns", i%3), Name: fmt.Sprint("p", i),
		User: audit.User{Username: "alice"}, Decision: decision, Actions: []string{a},
		Images: []audit.ImageEvent{{Image: fmt.Sprintf("registry.example.com/team%d/app%d:%d", i%2, i%4, i), Action: a}},
	}
}

func writeSynthetic(t testing.TB, s *audit.Store, n int) {
	t.Helper()
	const batch = 10000
	evs := make([]*audit.Event, 0, batch)
	for i := range n {
		evs = append(evs, synthetic(i))
		if len(evs) == batch || i == n-1 {
			if err := s.Write(evs); err != nil {
				t.Fatal(err)
			}
			evs = evs[:0]
		}
	}
}

// want is the brute-force answer: the synthetic events matching keep, newest first.
func want(n int, keep func(*audit.Event) bool) []string {
	var uids []string
	for i := n - 1; i >= 0; i-- {
		if ev := synthetic(i); keep(ev) {
			uids = append(uids, ev.UID)
		}
	}
	return uids
}

func uids(evs []*audit.Event) []string {
	out := []string{}
	for _, ev := range evs {
		out = append(out, ev.UID)
	}
	return out
}

func TestStoreQueries(t *testing.T) {
	const n = 600
	s, err := audit.OpenStore(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	writeSynthetic(t, s, n)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	tests := []struct {
		name string
		q    audit.Query
		keep func(*audit.Event) bool
	}{
		{"everything", audit.Query{}, func(*audit.Event) bool { return true }},
		{"namespace", audit.Query{Namespace: "ns1"}, func(e *audit.Event) bool { return e.Namespace == "ns1" }},
		{"action", audit.Query{Actions: []string{"block"}}, func(e *audit.Event) bool { return e.Actions[0] == "block" }},
		{"actions", audit.Query{Actions: []string{"alert", "unsigned"}}, func(e *audit.Event) bool { return e.Actions[0] == "alert" || e.Actions[0] == "unsigned" }},
		{"namespace and action", audit.Query{Namespace: "ns2", Actions: []string{"allow"}}, func(e *audit.Event) bool { return e.Namespace == "ns2" && e.Actions[0] == "allow" }},
		{"image glob", audit.Query{Image: "*/team1/app3"}, func(e *audit.Event) bool {
			return e.Images[0].Image[len("registry.example.com/team1/app3"):][0] == ':' && e.Images[0].Image[:31] == "registry.example.com/team1/app3"
		}},
		{"image glob and namespace", audit.Query{Image: "registry.example.com/team0/*", Namespace: "ns0"}, func(e *audit.Event) bool {
			return e.Namespace == "ns0" && e.Images[0].Image[:26] == "registry.example.com/team0"
		}},
		{"image exact, no match", audit.Query{Image: "nginx"}, func(*audit.Event) bool { return false }},
		{"since", audit.Query{Since: at(550)}, func(e *audit.Event) bool { return !e.Time.Before(at(550)) }},
		{"until", audit.Query{Until: at(20)}, func(e *audit.Event) bool { return !e.Time.After(at(20)) }},
		{"window, namespace, action", audit.Query{Since: at(100), Until: at(400), Namespace: "ns0", Actions: []string{"block", "error"}}, func(e *audit.Event) bool {
			return !e.Time.Before(at(100)) && !e.Time.After(at(400)) && e.Namespace == "ns0" && (e.Actions[0] == "block" || e.Actions[0] == "error")
		}},
		{"unknown namespace", audit.Query{Namespace: "nope"}, func(*audit.Event) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := want(n, tt.keep)
			// Page through with a small limit: the pages concatenated are the answer.
			var got []string
			q := tt.q
			q.Limit = 37
			pages := 0
			for {
				page, err := s.Query(q)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(page.Events) > 37 {
					t.Fatalf("page of %d events, limit 37", len(page.Events))
				}
				got = append(got, uids(page.Events)...)
				if page.NextPageToken == "" {
					break
				}
				if len(page.Events) != 37 {
					t.Fatalf("short page %d with a next page token", len(page.Events))
				}
				q.PageToken = page.NextPageToken
			}
			if got == nil {
				got = []string{}
			}
			if all == nil {
				all = []string{}
			}
			if !slices.Equal(got, all) {
				t.Errorf("got %d events %v..., want %d %v...", len(got), head(got), len(all), head(all))
			}
			if wantPages := max(1, (len(all)+36)/37); pages != wantPages {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}
		})
	}
}

func head(s []string) []string { return s[:min(5, len(s))] }

func TestStoreQueryEventContents(t *testing.T) {
	s, err := audit.OpenStore(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	writeSynthetic(t, s, 3)
	page, err := s.Query(audit.Query{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	ev := page.Events[0]
	w := synthetic(2)
	if ev.ID != w.ID || !ev.Time.Equal(w.Time) || ev.Name != w.Name || ev.Images[0].Image != w.Images[0].Image || ev.Decision != w.Decision {
		t.Errorf("stored %+v, want %+v", ev, w)
	}
}

func TestStoreRejectsBadQueries(t *testing.T) {
	s, err := audit.OpenStore(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		q     audit.Query
		param string
	}{
		{"unknown action", audit.Query{Actions: []string{"deny"}}, "action"},
		{"since after until", audit.Query{Since: t0.Add(time.Hour), Until: t0}, "since"},
		{"limit", audit.Query{Limit: 5000}, "limit"},
		{"page token", audit.Query{PageToken: "zz"}, "pageToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Query(tt.q)
			var fe *audit.FilterError
			if !errors.As(err, &fe) || fe.Param != tt.param {
				t.Errorf("error %v, want a FilterError on %s", err, tt.param)
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		p     audit.QueryParams
		param string // "" when valid
		check func(audit.Query) bool
	}{
		{"ages", audit.QueryParams{Since: "7d", Until: "90m"}, "", func(q audit.Query) bool {
			return q.Since.Equal(now.Add(-7*24*time.Hour)) && q.Until.Equal(now.Add(-90*time.Minute))
		}},
		{"rfc3339", audit.QueryParams{Since: "2026-11-01T00:00:00Z"}, "", func(q audit.Query) bool { return q.Since.Equal(t0) }},
		{"actions", audit.QueryParams{Action: "Block, alert,block"}, "", func(q audit.Query) bool { return slices.Equal(q.Actions, []string{"block", "alert"}) }},
		{"limit", audit.QueryParams{Limit: "10"}, "", func(q audit.Query) bool { return q.Limit == 10 }},
		{"bad since", audit.QueryParams{Since: "yesterday"}, "since", nil},
		{"negative age", audit.QueryParams{Since: "-5h"}, "since", nil},
		{"bad until", audit.QueryParams{Until: "0d"}, "until", nil},
		{"inverted range", audit.QueryParams{Since: "1h", Until: "2h"}, "since", nil},
		{"bad action", audit.QueryParams{Action: "block,deny"}, "action", nil},
		{"zero limit", audit.QueryParams{Limit: "0"}, "limit", nil},
		{"word limit", audit.QueryParams{Limit: "many"}, "limit", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := audit.ParseQuery(tt.p, now)
			var fe *audit.FilterError
			switch {
			case tt.param == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.param == "" && !tt.check(q):
				t.Errorf("query %+v", q)
			case tt.param != "" && (!errors.As(err, &fe) || fe.Param != tt.param):
				t.Errorf("error %v, want one on %s", err, tt.param)
			}
		})
	}
}

func TestStorePrune(t *testing.T) {
	s, err := audit.OpenStore(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	writeSynthetic(t, s, 12000)
	cut := t0.Add(11000 * time.Minute)
	n, err := s.Prune(cut)
	if err != nil || n != 11000 {
		t.Fatalf("pruned %d (%v), want 11000", n, err)
	}
	for _, q := range []audit.Query{{Limit: 1000}, {Namespace: "ns1", Limit: 1000}, {Actions: []string{"block"}, Limit: 1000}, {Image: "*app2", Limit: 1000}} {
		page, err := s.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			if ev.Time.Before(cut) {
				t.Errorf("query %+v: pruned event %s still found", q, ev.UID)
			}
		}
		if len(page.Events) == 0 {
			t.Errorf("query %+v: nothing left", q)
		}
	}
	if page, _ := s.Query(audit.Query{Limit: 1000}); len(page.Events) != 1000 || page.NextPageToken != "" {
		t.Errorf("%d events left (next %q), want 1000", len(page.Events), page.NextPageToken)
	}
}
