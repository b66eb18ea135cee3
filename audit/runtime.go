package audit

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/rego"
)

// RuntimeChange is what changed for a running workload: the runtime part
// of an event of type runtime.
type RuntimeChange struct {
	// Change is violating (it started breaking a policy), changed (it
	// breaks them differently) or resolved (it is compliant again).
	Change string `json:"change"`
	// Trigger is what made it be decided again (policy, attestor, scan,
	// malicious, scan-age, pod, resync) and Detail what exactly.
	Trigger string `json:"trigger"`
	Detail  string `json:"detail,omitempty"`
	// Pods is how many pods the workload has; Previous its action before.
	Pods     int    `json:"pods"`
	Previous string `json:"previous,omitempty"`
}

// Runtime is one runtime change as the monitor hands it over.
type Runtime struct {
	Time                  time.Time
	Namespace, Kind, Name string
	Change                RuntimeChange
	// Decision, Facts and Engine are the new decision (of the workload's
	// first pod spec) and what it was made on; Err when undecided.
	Decision *rego.Decision
	Facts    []*facts.Image
	Engine   *rego.Engine
	Err      error
}

// RecordRuntime queues a runtime event. Unlike Record it waits while the
// queue is more than half full (or until ctx ends, then drops): a policy
// change can make thousands of events at once, and admissions must keep
// room for theirs.
func (r *Recorder) RecordRuntime(ctx context.Context, rt Runtime) {
	if rt.Time.IsZero() {
		rt.Time = r.opts.now()
	}
	for len(r.queue) > cap(r.queue)/2 {
		select {
		case <-ctx.Done():
			r.dropped.Inc()
			return
		case <-time.After(pollInterval):
		}
	}
	r.enqueue(Admission{Time: rt.Time, Namespace: rt.Namespace, Kind: rt.Kind, Name: rt.Name, Decision: rt.Decision,
		Facts: rt.Facts, Engine: rt.Engine, Err: rt.Err, runtime: &rt.Change})
}

// buildRuntime turns a queued runtime change into its event.
func (x *strategyIndex) buildRuntime(a *Admission, id [16]byte, clusterID string) *Event {
	ev := x.build(a, id, clusterID)
	ev.ID = hex.EncodeToString(id[:])
	ev.Type, ev.Runtime, ev.Authenticated = TypeRuntime, a.runtime, nil
	if a.runtime.Change == "resolved" {
		ev.Actions = []string{ActionResolved}
	}
	return ev
}
