// Package storetest holds what every audit event store must answer, as
// tests any implementation runs against itself (the bbolt Store in package
// audit, PostgreSQL in package pgstore): the same filters, the same order
// and the same page tokens.
package storetest

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
)

// Subject is a store under test.
type Subject interface {
	audit.Sink
	audit.Querier
}

// T0 is the time of the first synthetic event.
var T0 = time.Date(2026, 11, 1, 23, 0, 0, 123456789, time.UTC)

// Synthetic is the i-th of a set of events one minute apart (crossing
// midnight) over two clusters, namespaces, actions and images; every 7th is
// a management API call.
func Synthetic(i int) *audit.Event {
	var id [16]byte
	at := T0.Add(time.Duration(i) * time.Minute)
	binary.BigEndian.PutUint64(id[:8], uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(id[8:], uint64(i))
	cluster := fmt.Sprint("c", 1+i%2)
	if i%7 == 0 {
		return &audit.Event{ID: hex.EncodeToString(id[:]), Type: audit.TypeAPI, Time: at, ClusterID: cluster, Decision: "allowed",
			Actions: []string{}, Images: []audit.ImageEvent{},
			API: &audit.APICall{RequestID: fmt.Sprint("r", i), Principal: fmt.Sprint("p", i%2), Action: fmt.Sprint("imagegate:Op", i%3),
				Resource: "imagegate:scan/x", Allowed: true, Status: 200}}
	}
	actions := []string{"block", "alert", "allow", "unsigned", "error"}
	a := actions[i%5]
	decision := "allowed"
	if a == "block" || a == "unsigned" {
		decision = "denied"
	}
	ev := &audit.Event{
		ID: hex.EncodeToString(id[:]), Type: audit.TypeAdmission, Time: at, ClusterID: cluster, UID: fmt.Sprint("u", i), Operation: "CREATE",
		Kind: "Pod", Namespace: fmt.Sprint("ns", i%3), Name: fmt.Sprint("p", i),
		User: audit.User{Username: "alice"}, Decision: decision, Actions: []string{a},
		Images: []audit.ImageEvent{{Image: fmt.Sprintf("registry.example.com/team%d/app%d:%d", i%2, i%4, i), Action: a}},
	}
	if i%11 == 0 { // a running workload decided again
		ev.Type, ev.Kind, ev.Operation, ev.User = audit.TypeRuntime, "Deployment", "", audit.User{}
		ev.Runtime = &audit.RuntimeChange{Change: "violating", Trigger: "malicious", Pods: 3}
		if a == "allow" {
			ev.Actions, ev.Runtime.Change = []string{audit.ActionResolved}, "resolved"
		}
	}
	return ev
}

// Write stores the first n synthetic events in batches.
func Write(t testing.TB, s audit.Sink, n int) {
	t.Helper()
	const batch = 5000
	evs := make([]*audit.Event, 0, batch)
	for i := range n {
		evs = append(evs, Synthetic(i))
		if len(evs) == batch || i == n-1 {
			if err := s.Write(evs); err != nil {
				t.Fatal(err)
			}
			evs = evs[:0]
		}
	}
}

func key(e *audit.Event) string {
	if e.API != nil {
		return e.API.RequestID
	}
	return e.UID
}

// Run writes 600 events into the store open returns and checks every kind
// of query against the brute-force answer, paging 37 at a time.
func Run(t *testing.T, open func(t *testing.T) Subject) {
	const n = 600
	s := open(t)
	Write(t, s, n)
	at := func(i int) time.Time { return T0.Add(time.Duration(i) * time.Minute) }
	// adm: admissions and runtime events, which namespace, action and image
	// filters select; admission: the admissions alone.
	adm := func(e *audit.Event) bool { return e.API == nil }
	admission := func(e *audit.Event) bool { return e.API == nil && e.Type != audit.TypeRuntime }
	runtime := func(e *audit.Event) bool { return e.Type == audit.TypeRuntime }
	repo := func(e *audit.Event) string { r, _, _ := strings.Cut(e.Images[0].Image, ":"); return r }
	tests := []struct {
		name string
		q    audit.Query
		keep func(*audit.Event) bool
	}{
		{"everything", audit.Query{}, func(*audit.Event) bool { return true }},
		{"admissions", audit.Query{Type: audit.TypeAdmission}, admission},
		{"admissions in a namespace", audit.Query{Type: audit.TypeAdmission, Namespace: "ns1"}, func(e *audit.Event) bool { return admission(e) && e.Namespace == "ns1" }},
		{"runtime", audit.Query{Type: audit.TypeRuntime}, runtime},
		{"runtime, namespace and action", audit.Query{Type: audit.TypeRuntime, Namespace: "ns0", Actions: []string{"block"}}, func(e *audit.Event) bool {
			return runtime(e) && e.Namespace == "ns0" && e.Actions[0] == "block"
		}},
		{"runtime resolved", audit.Query{Type: audit.TypeRuntime, Actions: []string{audit.ActionResolved}}, func(e *audit.Event) bool {
			return runtime(e) && e.Actions[0] == audit.ActionResolved
		}},
		{"runtime image glob", audit.Query{Type: audit.TypeRuntime, Image: "*/team1/*"}, func(e *audit.Event) bool {
			return runtime(e) && strings.HasPrefix(repo(e), "registry.example.com/team1/")
		}},
		{"api calls", audit.Query{Type: audit.TypeAPI}, func(e *audit.Event) bool { return !adm(e) }},
		{"principal", audit.Query{Principal: "p1"}, func(e *audit.Event) bool { return !adm(e) && e.API.Principal == "p1" }},
		{"api actions", audit.Query{APIActions: []string{"imagegate:Op0", "imagegate:Op2"}}, func(e *audit.Event) bool {
			return !adm(e) && e.API.Action != "imagegate:Op1"
		}},
		{"principal and api action", audit.Query{Principal: "p0", APIActions: []string{"imagegate:Op1"}}, func(e *audit.Event) bool {
			return !adm(e) && e.API.Principal == "p0" && e.API.Action == "imagegate:Op1"
		}},
		{"namespace", audit.Query{Namespace: "ns1"}, func(e *audit.Event) bool { return adm(e) && e.Namespace == "ns1" }},
		{"action", audit.Query{Actions: []string{"block"}}, func(e *audit.Event) bool { return adm(e) && e.Actions[0] == "block" }},
		{"actions", audit.Query{Actions: []string{"alert", "unsigned"}}, func(e *audit.Event) bool {
			return adm(e) && (e.Actions[0] == "alert" || e.Actions[0] == "unsigned")
		}},
		{"namespace and action", audit.Query{Namespace: "ns2", Actions: []string{"allow"}}, func(e *audit.Event) bool {
			return adm(e) && e.Namespace == "ns2" && e.Actions[0] == "allow"
		}},
		{"image glob", audit.Query{Image: "*/team1/app3"}, func(e *audit.Event) bool { return adm(e) && repo(e) == "registry.example.com/team1/app3" }},
		{"image glob ?", audit.Query{Image: "registry.example.com/team0/app?"}, func(e *audit.Event) bool {
			return adm(e) && strings.HasPrefix(repo(e), "registry.example.com/team0/app")
		}},
		{"image glob and namespace", audit.Query{Image: "registry.example.com/team0/*", Namespace: "ns0"}, func(e *audit.Event) bool {
			return adm(e) && e.Namespace == "ns0" && strings.HasPrefix(repo(e), "registry.example.com/team0/")
		}},
		{"image exact, no match", audit.Query{Image: "nginx"}, func(*audit.Event) bool { return false }},
		{"image with LIKE characters", audit.Query{Image: "registry.example.com/team_/app%"}, func(*audit.Event) bool { return false }},
		{"since", audit.Query{Since: at(550)}, func(e *audit.Event) bool { return !e.Time.Before(at(550)) }},
		{"since between two events", audit.Query{Since: at(550).Add(-time.Nanosecond)}, func(e *audit.Event) bool { return !e.Time.Before(at(550)) }},
		{"until, inclusive to the nanosecond", audit.Query{Until: at(20)}, func(e *audit.Event) bool { return !e.Time.After(at(20)) }},
		{"until a nanosecond before an event", audit.Query{Until: at(20).Add(-time.Nanosecond)}, func(e *audit.Event) bool { return e.Time.Before(at(20)) }},
		{"window, namespace, action", audit.Query{Since: at(100), Until: at(400), Namespace: "ns0", Actions: []string{"block", "error"}}, func(e *audit.Event) bool {
			return adm(e) && !e.Time.Before(at(100)) && !e.Time.After(at(400)) && e.Namespace == "ns0" && (e.Actions[0] == "block" || e.Actions[0] == "error")
		}},
		{"unknown namespace", audit.Query{Namespace: "nope"}, func(*audit.Event) bool { return false }},
		{"cluster", audit.Query{ClusterID: "c2"}, func(e *audit.Event) bool { return e.ClusterID == "c2" }},
		{"cluster, api calls", audit.Query{ClusterID: "c1", Type: audit.TypeAPI}, func(e *audit.Event) bool { return !adm(e) && e.ClusterID == "c1" }},
		{"cluster, namespace, action, window", audit.Query{ClusterID: "c1", Namespace: "ns0", Actions: []string{"block", "allow"}, Since: at(50)}, func(e *audit.Event) bool {
			return adm(e) && e.ClusterID == "c1" && e.Namespace == "ns0" && (e.Actions[0] == "block" || e.Actions[0] == "allow") && !e.Time.Before(at(50))
		}},
		{"unknown cluster", audit.Query{ClusterID: "nope"}, func(*audit.Event) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := []string{}
			for i := n - 1; i >= 0; i-- {
				if ev := Synthetic(i); tt.keep(ev) {
					all = append(all, key(ev))
				}
			}
			got := []string{}
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
				for _, ev := range page.Events {
					got = append(got, key(ev))
				}
				if page.NextPageToken == "" {
					break
				}
				if len(page.Events) != 37 {
					t.Fatalf("short page %d with a next page token", len(page.Events))
				}
				q.PageToken = page.NextPageToken
			}
			if !slices.Equal(got, all) {
				t.Errorf("got %d events %v..., want %d %v...", len(got), got[:min(5, len(got))], len(all), all[:min(5, len(all))])
			}
			if wantPages := max(1, (len(all)+36)/37); pages != wantPages {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}
		})
	}
	t.Run("events come back as written", func(t *testing.T) {
		page, err := s.Query(audit.Query{Limit: 2})
		if err != nil || len(page.Events) != 2 {
			t.Fatalf("%v %v", page, err)
		}
		for i, ev := range page.Events {
			w := Synthetic(n - 1 - i)
			if ev.ID != w.ID || !ev.Time.Equal(w.Time) || ev.ClusterID != w.ClusterID || ev.Name != w.Name || ev.Decision != w.Decision ||
				(w.API == nil && ev.Images[0].Image != w.Images[0].Image) || (w.API != nil && (ev.API == nil || ev.API.Action != w.API.Action)) {
				t.Errorf("stored %+v, want %+v", ev, w)
			}
		}
	})
	t.Run("bad queries are FilterErrors", func(t *testing.T) {
		for _, c := range []struct {
			q     audit.Query
			param string
		}{
			{audit.Query{Actions: []string{"deny"}}, "action"},
			{audit.Query{Since: T0.Add(time.Hour), Until: T0}, "since"},
			{audit.Query{Limit: 5000}, "limit"},
			{audit.Query{PageToken: "zz"}, "pageToken"},
			{audit.Query{Type: audit.TypeAPI, Namespace: "ns0"}, "namespace"},
		} {
			_, err := s.Query(c.q)
			var fe *audit.FilterError
			if !errors.As(err, &fe) || fe.Param != c.param {
				t.Errorf("%+v: error %v, want a FilterError on %s", c.q, err, c.param)
			}
		}
	})
}
