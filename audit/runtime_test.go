package audit_test

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
)

// Runtime events share the admission indexes but each type's query finds
// only its own.
func TestRuntimeEventsQueriedByType(t *testing.T) {
	st, err := audit.OpenStore(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ev := func(i int, typ, action string) *audit.Event {
		id := make([]byte, 16)
		id[7], id[15] = byte(i), byte(i)
		e := &audit.Event{ID: hex.EncodeToString(id), Type: typ, Time: at, Namespace: "prod", Kind: "Pod", Name: "p",
			Decision: audit.DecisionDenied, Actions: []string{action}, Images: []audit.ImageEvent{{Image: "reg.io/app:1", Action: action}}}
		if typ == audit.TypeRuntime {
			e.Runtime = &audit.RuntimeChange{Change: "violating", Trigger: "malicious"}
		}
		return e
	}
	if err := st.Write([]*audit.Event{ev(1, audit.TypeAdmission, "block"), ev(2, audit.TypeRuntime, "block"), ev(3, audit.TypeRuntime, "resolved")}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		q    audit.Query
		want int
	}{
		{audit.Query{}, 3},
		{audit.Query{Type: audit.TypeRuntime}, 2},
		{audit.Query{Type: audit.TypeRuntime, Namespace: "prod", Actions: []string{"block"}}, 1},
		{audit.Query{Type: audit.TypeRuntime, Actions: []string{"resolved"}}, 1},
		{audit.Query{Type: audit.TypeRuntime, Image: "reg.io/*"}, 2},
		{audit.Query{Type: audit.TypeAdmission, Namespace: "prod"}, 1},
		{audit.Query{Type: audit.TypeAdmission}, 1},
	}
	for _, c := range cases {
		page, err := st.Query(c.q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != c.want {
			t.Errorf("%+v: %d events, want %d", c.q, len(page.Events), c.want)
		}
	}
	if _, err := audit.ParseQuery(audit.QueryParams{Type: "runtime", Principal: "x"}, at); err == nil {
		t.Error("runtime with a principal accepted")
	}
}

// RecordRuntime writes a runtime event with what changed; a resolved one
// has the action resolved.
func TestRecordRuntime(t *testing.T) {
	sink := &memSink{}
	rec, err := audit.NewRecorder([]audit.Sink{sink})
	if err != nil {
		t.Fatal(err)
	}
	rec.RecordRuntime(context.Background(), audit.Runtime{Namespace: "a", Kind: "Deployment", Name: "web",
		Change: audit.RuntimeChange{Change: "resolved", Trigger: "malicious", Pods: 3, Previous: "block"}})
	rec.Close()
	if len(sink.events) != 1 {
		t.Fatalf("%d events", len(sink.events))
	}
	e := sink.events[0]
	if e.Type != audit.TypeRuntime || e.Runtime.Previous != "block" || e.Actions[0] != audit.ActionResolved || e.Kind != "Deployment" || e.Authenticated != nil {
		t.Errorf("event %+v", e)
	}
}
