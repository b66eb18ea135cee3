package audit_test

import (
	"context"
	"github.com/imagegate/imagegate/rego"
	"testing"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/webhook"
	"github.com/imagegate/imagegate/workload"
)

type discardSink struct{}

func (discardSink) Name() string                   { return "discard" }
func (discardSink) Write(evs []*audit.Event) error { return nil }

// BenchmarkRecord is the cost on the admission path: queueing one event
// (the worker builds it later), and dropping one when the queue is full.
func BenchmarkRecord(b *testing.B) {
	d := fixtureDecider(b)
	out, err := d.DecideOutcome(context.Background(), &workload.Object{Kind: "Pod", Namespace: "default", Name: "web",
		Images: []workload.Image{workload.ParseImage("bad-app:1"), workload.ParseImage("registry.example.com/team/vuln:1")}})
	if err != nil {
		b.Fatal(err)
	}
	a := audit.Admission{UID: "u", Operation: "CREATE", Kind: "Pod", Namespace: "default", Name: "web", Username: "alice",
		Groups: []string{"dev"}, Decision: out.Decision, Facts: out.Facts, Engine: out.Engine}
	b.Run("queued, worker busy", func(b *testing.B) {
		// The worker is held in a sink, so this is the enqueue alone.
		sink := &stalledSink{release: make(chan struct{}), entered: make(chan struct{})}
		rec, err := audit.NewRecorder([]audit.Sink{sink}, audit.WithQueueSize(1<<18))
		if err != nil {
			b.Fatal(err)
		}
		rec.Record(a)
		<-sink.entered
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i == 1<<18-1 {
				b.Fatal("queue full: run with -benchtime below 262143x")
			}
			rec.Record(a)
		}
		close(sink.release)
		rec.Close()
	})
	b.Run("queued, worker writing", func(b *testing.B) {
		rec, err := audit.NewRecorder([]audit.Sink{discardSink{}}, audit.WithQueueSize(1<<20))
		if err != nil {
			b.Fatal(err)
		}
		defer rec.Close()
		b.ReportAllocs()
		for b.Loop() {
			rec.Record(a)
		}
	})
	b.Run("dropped", func(b *testing.B) {
		sink := &stalledSink{release: make(chan struct{}), entered: make(chan struct{})}
		rec, err := audit.NewRecorder([]audit.Sink{sink}, audit.WithQueueSize(1))
		if err != nil {
			b.Fatal(err)
		}
		rec.Record(a)
		<-sink.entered
		b.ReportAllocs()
		for b.Loop() {
			rec.Record(a)
		}
		close(sink.release)
		rec.Close()
	})
	b.Run("plain pass", func(b *testing.B) {
		rec, err := audit.NewRecorder([]audit.Sink{discardSink{}})
		if err != nil {
			b.Fatal(err)
		}
		defer rec.Close()
		// What every admitted, unremarkable pod costs: Notable walks its
		// images and finds nothing to record.
		pass := audit.Admission{UID: "u", Decision: &rego.Decision{Allowed: true,
			Images: []rego.ImageDecision{{Action: rego.Pass}, {Action: rego.Pass}, {Action: rego.Pass}}}}
		b.ReportAllocs()
		for b.Loop() {
			rec.Record(pass)
		}
	})
}

// BenchmarkAdmission is a whole blocked admission through the handler,
// without and with an auditor.
func BenchmarkAdmission(b *testing.B) {
	body := podReview("u", "default", "web", false, "bad-app:1")
	for _, withAudit := range []bool{false, true} {
		name := "no auditor"
		var opts []webhook.Option
		if withAudit {
			name = "auditor"
			rec, err := audit.NewRecorder([]audit.Sink{discardSink{}}, audit.WithQueueSize(1<<16))
			if err != nil {
				b.Fatal(err)
			}
			defer rec.Close()
			opts = append(opts, webhook.WithAuditor(rec))
		}
		b.Run(name, func(b *testing.B) {
			h := newHandler(b, opts...)
			b.ReportAllocs()
			for b.Loop() {
				admit(b, h, body)
			}
		})
	}
}
