package audit_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
	"github.com/prometheus/client_golang/prometheus"
)

// stalledSink never returns from Write until released: a hung disk or network.
type stalledSink struct {
	release chan struct{}
	once    sync.Once
	entered chan struct{}
}

func (s *stalledSink) Name() string { return "stalled" }

func (s *stalledSink) Write([]*audit.Event) error {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return nil
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// TestStalledSinkLeavesAdmissionAlone: with a sink that never finishes, the
// queue fills, further events are dropped and counted, and admission
// latency stays what it is without an auditor.
func TestStalledSinkLeavesAdmissionAlone(t *testing.T) {
	const queue, n = 8, 300
	sink := &stalledSink{release: make(chan struct{}), entered: make(chan struct{})}
	reg := prometheus.NewRegistry()
	rec, err := audit.NewRecorder([]audit.Sink{sink}, audit.WithQueueSize(queue), audit.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	audited := newHandler(t, webhook.WithAuditor(rec))
	plain := newHandler(t)
	body := podReview("u", "default", "web", false, "bad-app:1")
	run := func(audit bool) []time.Duration {
		h := plain
		if audit {
			h = audited
		}
		ds := make([]time.Duration, 0, n)
		for range n {
			start := time.Now()
			w := admit(t, h, body)
			ds = append(ds, time.Since(start))
			if !strings.Contains(w.Body.String(), `"allowed":false`) {
				t.Fatalf("answer changed: %s", w.Body)
			}
		}
		return ds
	}
	run(false) // warm the decision cache and the code paths
	base := median(run(false))
	admit(t, audited, body)
	<-sink.entered // the worker is now stuck in Write
	stalled := median(run(true))
	t.Logf("median admission: %v without auditor, %v with a stalled sink", base, stalled)
	if stalled > 2*base+100*time.Microsecond {
		t.Errorf("median admission %v with a stalled sink, %v without: the sink slows admission", stalled, base)
	}
	dropped := counter(t, reg, "imagegate_audit_events_dropped_total")
	if want := float64(n - queue); dropped < want {
		t.Errorf("dropped %v, want ≥ %v", dropped, want)
	}
	close(sink.release)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if written := counter(t, reg, "imagegate_audit_events_total"); written < 1 || written > queue+2 {
		t.Errorf("written %v, want 1..%d (the queue's worth)", written, queue+2)
	}
}

func TestRecorderSkipsPlainPasses(t *testing.T) {
	reg := prometheus.NewRegistry()
	sink := &memSink{}
	rec, err := audit.NewRecorder([]audit.Sink{sink}, audit.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		a    audit.Admission
		want bool
	}{
		{"plain pass", audit.Admission{Decision: &rego.Decision{Allowed: true, Images: []rego.ImageDecision{{Action: rego.Pass}}}}, false},
		{"no decision, no error", audit.Admission{}, false},
		{"block", audit.Admission{Decision: &rego.Decision{Images: []rego.ImageDecision{{Action: rego.Block}}}}, true},
		{"allow", audit.Admission{Decision: &rego.Decision{Allowed: true, Images: []rego.ImageDecision{{Action: rego.Allow}}}}, true},
		{"excused warning", audit.Admission{Decision: &rego.Decision{Allowed: true, Warnings: []string{"w"}, Images: []rego.ImageDecision{{Action: rego.Pass}}}}, true},
		{"error", audit.Admission{Err: errTest}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Notable(); got != tt.want {
				t.Errorf("Notable = %v, want %v", got, tt.want)
			}
			rec.Record(tt.a)
		})
	}
	rec.Close()
	if len(sink.events) != 4 {
		t.Fatalf("%d events, want 4", len(sink.events))
	}
	if got := sink.events[2].Actions; !slices.Equal(got, []string{"alert"}) {
		t.Errorf("excused warning actions %v, want [alert]", got)
	}
	if ev := sink.events[3]; ev.Error != errTest.Error() || !slices.Equal(ev.Actions, []string{"error"}) || ev.Decision != "denied" {
		t.Errorf("error event %+v", ev)
	}
	ids := map[string]bool{}
	for _, ev := range sink.events {
		if ids[ev.ID] || len(ev.ID) != 32 {
			t.Errorf("id %q repeated or not 16 hex bytes", ev.ID)
		}
		ids[ev.ID] = true
	}
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("facts late")

type memSink struct {
	mu     sync.Mutex
	events []*audit.Event
}

func (m *memSink) Name() string { return "mem" }

func (m *memSink) Write(evs []*audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, evs...)
	return nil
}

func TestNewRecorderRejectsBadOptions(t *testing.T) {
	for _, opt := range []audit.Option{audit.WithQueueSize(0), audit.WithBatchSize(-1), audit.WithLogger(nil), audit.WithLogInterval(0)} {
		if _, err := audit.NewRecorder(nil, opt); err == nil {
			t.Error("bad option accepted")
		}
	}
}
