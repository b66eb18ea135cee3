package audit_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
)

func refused(source, code string, at time.Time) audit.APICall {
	return audit.APICall{Time: at, RequestID: "r", SourceIP: source, Statement: -1, Status: 401, Code: code}
}

// apiEvents reads every API event of the store.
func apiEvents(t *testing.T, s *audit.Store) []*audit.Event {
	t.Helper()
	var out []*audit.Event
	q := audit.Query{Type: audit.TypeAPI, Limit: audit.MaxLimit}
	for {
		page, err := s.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Events...)
		if page.NextPageToken == "" {
			return out
		}
		q.PageToken = page.NextPageToken
	}
}

// TestRefusedAPICallsAggregated: a flood of refused calls (59,000 with a
// wrong token from one address, as the probe sent in 15 s) is stored as
// one full event and one summary with the count; refused calls of more
// kinds than the table holds share one overflow summary; allowed calls are
// all recorded; caller text is cut.
func TestRefusedAPICallsAggregated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	store, err := audit.OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := audit.NewRecorder([]audit.Sink{store}, audit.WithRefusalWindow(time.Hour), audit.WithRefusalKeys(4))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	const flood = 59000
	for i := range flood {
		rec.RecordAPICall(refused("10.0.0.1", "InvalidToken", at.Add(time.Duration(i)*time.Microsecond)))
	}
	for i := range 10 {
		rec.RecordAPICall(audit.APICall{Time: at, RequestID: fmt.Sprint("ok", i), Principal: "root", Action: "imagegate:DescribeAttestors", Allowed: true, Status: 200})
	}
	for i := range 6 { // 3 fit the table beside 10.0.0.1, 3 overflow
		for range 2 {
			rec.RecordAPICall(refused(fmt.Sprintf("10.0.1.%d", i), "InvalidToken", at))
		}
	}
	huge := refused("10.0.0.1", "InvalidAction.NotFound", at)
	huge.Action = "imagegate:" + strings.Repeat("x", 1<<20)
	rec.RecordAPICall(huge) // a fifth kind: overflows too
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}

	evs := apiEvents(t, store)
	counts := map[string][]int{} // source → counts of its events (0: a full one)
	allowed := 0
	for _, ev := range evs {
		if len(ev.API.Action) > 300 {
			t.Errorf("an event carries a %d-byte action", len(ev.API.Action))
		}
		if ev.API.Allowed {
			allowed++
			continue
		}
		key := ev.API.SourceIP
		if ev.API.Code == audit.OverflowCode {
			key = "overflow"
		}
		counts[key] = append(counts[key], ev.Count)
		if ev.Count > 0 && (ev.Until.IsZero() || ev.Until.Before(ev.Time)) {
			t.Errorf("summary without its time span: %+v", ev)
		}
	}
	want := map[string]string{"10.0.0.1": "[58999 0]", "10.0.1.0": "[1 0]", "10.0.1.1": "[1 0]", "10.0.1.2": "[1 0]", "overflow": "[7]"}
	for k, w := range want {
		if got := fmt.Sprint(counts[k]); got != w {
			t.Errorf("%s: counts %s, want %s", k, got, w)
		}
	}
	if allowed != 10 || len(evs) != 10+2+6+1 {
		t.Errorf("%d events, %d allowed; want 19, 10", len(evs), allowed)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() > 1<<20 {
		t.Errorf("the store grew to %d bytes", info.Size())
	}
	t.Logf("%d refused calls: %d events, store %d bytes", flood+13, len(evs)-allowed, info.Size())
}

// TestRefusalWindowEnds: the summary is written when its window ends, not
// only on Close, and the next refused call opens a new window in full.
func TestRefusalWindowEnds(t *testing.T) {
	sink := &memSink{}
	rec, err := audit.NewRecorder([]audit.Sink{sink}, audit.WithRefusalWindow(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	for range 100 {
		rec.RecordAPICall(refused("10.0.0.9", "InvalidToken", time.Now()))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(sink.snapshot()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	rec.RecordAPICall(refused("10.0.0.9", "InvalidToken", time.Now()))
	for len(sink.snapshot()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var counts []int
	for _, ev := range sink.snapshot() {
		counts = append(counts, ev.Count)
	}
	if fmt.Sprint(counts) != "[0 99 0]" {
		t.Errorf("event counts %v, want [0 99 0] (full, summary, full in the next window)", counts)
	}
}

func TestRefusalOptionsValidated(t *testing.T) {
	for name, opt := range map[string]audit.Option{"window": audit.WithRefusalWindow(0), "keys": audit.WithRefusalKeys(0)} {
		if _, err := audit.NewRecorder(nil, opt); err == nil || !strings.Contains(err.Error(), "refusal") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func (m *memSink) snapshot() []*audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*audit.Event(nil), m.events...)
}
