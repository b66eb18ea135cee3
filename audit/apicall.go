package audit

import (
	"encoding/hex"
	"time"
)

// Event types: what an event is about.
const (
	TypeAdmission = "admission" // an admission request (the webhook)
	TypeAPI       = "api"       // a management API call
	TypeRuntime   = "runtime"   // a running workload decided again (package compliance)
)

// Types lists every type a query may name.
var Types = []string{TypeAdmission, TypeAPI, TypeRuntime}

// APICall is one management API call as its handler saw it: who called,
// what was asked, and what the authorizer decided and why. Only the file
// and store sinks write these; Kubernetes Events and PolicyReports are
// about workloads.
type APICall struct {
	Time      time.Time `json:"-"`
	RequestID string    `json:"requestId"`
	Principal string    `json:"principal"`
	Groups    []string  `json:"groups,omitempty"`
	Agency    string    `json:"agency,omitempty"`
	Action    string    `json:"action"`
	Resource  string    `json:"resource,omitempty"`
	Allowed   bool      `json:"allowed"`
	// Decision is the authorizer's verdict in words, naming the deciding
	// policy and statement; PolicyID and Statement are the same as fields
	// (Statement -1 when no statement decided).
	Decision  string `json:"decision,omitempty"`
	PolicyID  string `json:"policyId,omitempty"`
	Statement int    `json:"statement"`
	Sid       string `json:"sid,omitempty"`
	SourceIP  string `json:"sourceIp,omitempty"`
	Status    int    `json:"status"`
	// Code is the error code answered (NoPermission, InvalidParameter.…);
	// empty on success.
	Code string `json:"code,omitempty"`
}

// RecordAPICall queues a management API call's event. Like Record it never
// blocks: with the queue full the event is dropped and counted. Every call
// is an event, allowed or not.
//
// Refused calls (not allowed: no or a wrong token, no permission, an
// unknown operation) are aggregated (see DefaultRefusalWindow): the first of
// each kind per window is queued, the others counted into one summary.
func (r *Recorder) RecordAPICall(c APICall) {
	if c.Time.IsZero() {
		c.Time = r.opts.now()
	}
	bound(&c)
	if !c.Allowed && !r.refused.admit(&c) {
		r.aggregated.Inc()
		return
	}
	r.enqueue(Admission{Time: c.Time, api: &c})
}

// buildAPI turns a queued API call into its event.
func buildAPI(a *Admission, id [16]byte, clusterID string) *Event {
	c := a.api
	ev := &Event{
		ID: hex.EncodeToString(id[:]), Type: TypeAPI, Time: a.Time.UTC(), ClusterID: clusterID,
		User: User{Username: c.Principal, Groups: c.Groups}, Decision: DecisionDenied, API: c,
		Actions: []string{}, Images: []ImageEvent{}, Count: a.apiCount,
	}
	if a.apiCount > 0 {
		ev.Until = a.apiUntil.UTC()
	}
	// The decision is authorization's; a call allowed but failing later
	// (a bad parameter) says so in API.Code.
	if c.Allowed {
		ev.Decision = DecisionAllowed
	}
	return ev
}
