package compliance

import (
	"context"

	"github.com/imagegate/imagegate/audit"
)

// AuditSink records each notable change as an audit event of type runtime.
type AuditSink struct{ Recorder *audit.Recorder }

var _ Sink = AuditSink{}

// Changed records the notable changes.
func (a AuditSink) Changed(ctx context.Context, changes []Change) {
	for _, c := range changes {
		if !c.Notable() {
			continue
		}
		s := c.New
		out := s.Outcome()
		var err error
		if s.Error != "" {
			err = errorString(s.Error)
		}
		a.Recorder.RecordRuntime(ctx, audit.Runtime{Time: s.DecidedAt, Namespace: s.Namespace, Kind: s.Kind, Name: s.Name,
			Change:   audit.RuntimeChange{Change: c.Kind(), Trigger: c.Cause.Trigger, Detail: c.Cause.Detail, Pods: s.Pods, Previous: c.Old.Action},
			Decision: out.Decision, Facts: out.Facts, Engine: out.Engine, Err: err})
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
