package audit

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The Kubernetes sinks are tested against a real kube-apiserver in
// test/e2e (TestAuditKubernetesSinks); these cover aggregation, the rate
// limit and the result mapping quickly, with client-go's fake clientset.

func kubeEvent(name, action string, at time.Time) *Event {
	return &Event{ID: "00", Time: at, Kind: "Pod", Namespace: "ns", Name: name, Decision: DecisionDenied, Actions: []string{action},
		Violations: []string{"image \"x\" blocked"}, Images: []ImageEvent{{Image: "x", Action: action,
			Strategies: []StrategyHit{{ID: 7, Name: "s7", Action: action}}, Reasons: []string{"image \"x\" blocked by strategy 7 \"s7\": unscanned"}}}}
}

func TestEventSinkAggregatesAndLimits(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	client := fake.NewClientset()
	s := NewEventSink(client)
	s.now = clock
	s.limit = newTokenBucket(1, 2, clock)
	write := func(evs ...*Event) {
		t.Helper()
		if err := s.Write(evs); err != nil {
			t.Fatal(err)
		}
	}
	list := func() []corev1.Event {
		l, err := client.CoreV1().Events("ns").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return l.Items
	}
	write(kubeEvent("p", ActionBlock, now), kubeEvent("p", ActionBlock, now)) // create, then update: burst of 2
	write(kubeEvent("p", ActionBlock, now), kubeEvent("p", ActionBlock, now)) // no tokens: counted only
	if evs := list(); len(evs) != 1 || evs[0].Count != 2 || evs[0].Reason != "ImageBlocked" || evs[0].Type != corev1.EventTypeWarning {
		t.Fatalf("events %+v, want one ImageBlocked with count 2", evs)
	}
	now = now.Add(time.Second) // one token: the write carries the two counted ones
	write(kubeEvent("p", ActionBlock, now))
	if evs := list(); len(evs) != 1 || evs[0].Count != 5 {
		t.Fatalf("count %d, want 5", evs[0].Count)
	}
	now = now.Add(2 * time.Second)
	write(kubeEvent("p", ActionAllow, now))
	if evs := list(); len(evs) != 2 {
		t.Fatalf("%d events, want a second one for another action", len(evs))
	}
	now = now.Add(DefaultEventAggregateWindow + time.Minute)
	write(kubeEvent("p", ActionBlock, now))
	if evs := list(); len(evs) != 3 {
		t.Fatalf("%d events, want a new one after the aggregation window", len(evs))
	}
}

func TestResults(t *testing.T) {
	at := time.Unix(1700000000, 5)
	tests := []struct {
		name   string
		ev     *Event
		result []string
	}{
		{"block", kubeEvent("p", ActionBlock, at), []string{"fail"}},
		{"alert", kubeEvent("p", ActionAlert, at), []string{"warn"}},
		{"allow", func() *Event {
			e := kubeEvent("p", ActionAllow, at)
			e.Images[0].Strategies = []StrategyHit{{ID: 1, Action: ActionBlock}, {ID: 2, Action: ActionAllow}}
			return e
		}(), []string{"skip", "skip"}},
		{"unsigned", func() *Event {
			e := kubeEvent("p", ActionUnsigned, at)
			e.Images[0].Strategies = nil
			e.Images[0].MissingAttestors = []MissingAttestor{{Attestor: "ci", Reason: "no signatures"}}
			return e
		}(), []string{"fail"}},
		{"error", &Event{Namespace: "ns", Name: "p", Kind: "Pod", Error: "facts late", Actions: []string{ActionError}}, []string{"error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := results(tt.ev)
			if len(rs) != len(tt.result) {
				t.Fatalf("%d results, want %d: %v", len(rs), len(tt.result), rs)
			}
			for i, r := range rs {
				if got := r.(map[string]any)["result"]; got != tt.result[i] {
					t.Errorf("result %d: %v, want %s", i, got, tt.result[i])
				}
			}
		})
	}
	sum := PolicyReportSummary(append(results(kubeEvent("a", ActionBlock, at)), results(kubeEvent("b", ActionAlert, at))...))
	if sum["fail"] != int64(1) || sum["warn"] != int64(1) || sum["pass"] != int64(0) {
		t.Errorf("summary %v", sum)
	}
}

// TestKubeSinksSkipAPICalls: management API calls are no workload's
// business, even when an event carried a namespace and name.
func TestKubeSinksSkipAPICalls(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	apiEv := &Event{ID: "01", Type: TypeAPI, Time: now, Namespace: "ns", Name: "p", Kind: "Pod", Decision: DecisionDenied,
		Actions: []string{ActionBlock}, API: &APICall{Principal: "alice", Action: "imagegate:CreateOpaStrategyNew"}}
	client := fake.NewClientset()
	s := NewEventSink(client)
	s.now = func() time.Time { return now }
	if err := s.Write([]*Event{apiEv, kubeEvent("w", ActionBlock, now)}); err != nil {
		t.Fatal(err)
	}
	l, err := client.CoreV1().Events("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 || l.Items[0].InvolvedObject.Name != "w" {
		t.Fatalf("events %+v, want only the workload's", l.Items)
	}
	// No client: writing anything for the API call would fail.
	if err := (&ReportSink{}).Write([]*Event{apiEv}); err != nil {
		t.Fatalf("report sink wrote an API call: %v", err)
	}
}
