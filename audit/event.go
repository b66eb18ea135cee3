package audit

import (
	"encoding/hex"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/workload"
)

// Actions an event can be found by (besides the per-image actions of
// rego: alert, block, allow, unsigned), and the one for undecided requests.
const (
	ActionAlert    = string(rego.Alert)
	ActionBlock    = string(rego.Block)
	ActionAllow    = string(rego.Allow)
	ActionUnsigned = string(rego.Unsigned)
	ActionError    = "error"
	// ActionResolved is a runtime event's action when a workload that
	// broke a policy is compliant again.
	ActionResolved = "resolved"
)

// Actions lists every action a query may name.
var Actions = []string{ActionBlock, ActionAlert, ActionAllow, ActionUnsigned, ActionError, ActionResolved}

// Decisions of an event.
const (
	DecisionAllowed = "allowed"
	DecisionDenied  = "denied"
)

// Admission is what the webhook hands over for one request: raw values the
// background worker turns into an Event. Nothing in it is modified after
// Record, by either side.
type Admission struct {
	Time      time.Time
	UID       string
	Operation string
	Kind      string
	Namespace string
	Name      string
	Username  string
	Groups    []string
	DryRun    bool
	// Authenticated: the review came over a connection whose client
	// certificate verified against the webhook's client CAs (the API
	// server's); otherwise anyone may have written it, Username included.
	// Client is that certificate's subject.
	Authenticated bool
	Client        string
	// Decision, Facts and Engine are the decision and what it was made on;
	// Decision is nil when the request could not be decided.
	Decision *rego.Decision
	Facts    []*facts.Image
	Engine   *rego.Engine
	// Err says why the request could not be decided (or was invalid);
	// Allowed is what was answered then (failing open or closed).
	Err     error
	Allowed bool
	Images  []workload.Image // the workload's images, for undecided requests

	// api is set instead of the rest for a management API call
	// (RecordAPICall), so both kinds share the one queue.
	api *APICall
	// runtime is set for a runtime event (RecordRuntime).
	runtime *RuntimeChange
	// apiCount and apiUntil summarize refused calls aggregated into api
	// (the first of them): how many, and the last one's time.
	apiCount int
	apiUntil time.Time
	// committed is closed once the durable sinks wrote the event (sync
	// mode: Record waits for it).
	committed chan struct{}
}

// Notable reports whether an admission is an event: anything but a plain pass.
func (a *Admission) Notable() bool {
	if a.Err != nil {
		return true
	}
	d := a.Decision
	if d == nil {
		return false
	}
	if !d.Allowed || len(d.Warnings) > 0 {
		return true
	}
	for i := range d.Images {
		if d.Images[i].Action != rego.Pass {
			return true
		}
	}
	return false
}

// Event is one audit event, as every sink writes it.
type Event struct {
	ID string `json:"id"`
	// Type is admission or api; API is the call of an api event (the
	// admission fields are then empty, but for User, Decision and Time).
	Type      string    `json:"type"`
	Time      time.Time `json:"time"`
	ClusterID string    `json:"clusterId"`
	UID       string    `json:"uid"`
	Operation string    `json:"operation"`
	DryRun    bool      `json:"dryRun"`
	Kind      string    `json:"kind"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	User      User      `json:"user"`
	// Authenticated says whether the review came from an authenticated
	// client (a certificate from the webhook's client CA: the API server),
	// so that User can be taken as fact; Client is its certificate's
	// subject. Set on admission events only.
	Authenticated *bool  `json:"authenticated,omitempty"`
	Client        string `json:"client,omitempty"`
	// Decision is allowed or denied; Actions are the distinct non-pass
	// actions of the images (error when undecided), what queries filter on.
	Decision   string       `json:"decision"`
	Actions    []string     `json:"actions"`
	Images     []ImageEvent `json:"images"`
	Violations []string     `json:"violations,omitempty"`
	Warnings   []string     `json:"warnings,omitempty"`
	Error      string       `json:"error,omitempty"`
	API        *APICall     `json:"api,omitempty"`
	// Runtime says, on a runtime event, what changed for a running
	// workload (Kind and Name are its controller's, or the pod's).
	Runtime *RuntimeChange `json:"runtime,omitempty"`
	// Count and Until are set on the summary of refused API calls of one
	// kind (source, principal, action, code) in one window: how many calls
	// it stands for, API being the first of them, and the last one's time.
	Count int       `json:"count,omitempty"`
	Until time.Time `json:"until,omitzero"`
}

// IsAPI reports whether the event is a management API call; events
// written before there were types are admissions.
func (e *Event) IsAPI() bool { return e.Type == TypeAPI || e.API != nil }

// User is who made the request.
type User struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups,omitempty"`
}

// ImageEvent is one image of an event.
type ImageEvent struct {
	Image            string            `json:"image"`
	Digest           string            `json:"digest,omitempty"`
	Action           string            `json:"action"`
	Strategies       []StrategyHit     `json:"strategies,omitempty"`
	MissingAttestors []MissingAttestor `json:"missingAttestors,omitempty"`
	Findings         []rego.Finding    `json:"findings,omitempty"`
	Reasons          []string          `json:"reasons,omitempty"`
}

// StrategyHit is a strategy that hit an image, with its own action (which
// the image's action may override: allow wins over block over alert).
type StrategyHit struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Action string `json:"action"`
}

// MissingAttestor is a required attestor that did not verify, and why.
type MissingAttestor struct {
	Attestor string `json:"attestor"`
	Reason   string `json:"reason"`
}

// strategyIndex maps strategy ids of one snapshot to their name and action;
// the worker keeps the last one, since snapshots change rarely.
type strategyIndex struct {
	snap *policy.Snapshot
	byID map[int64]StrategyHit
}

func (x *strategyIndex) lookup(e *rego.Engine, id int64) StrategyHit {
	if e == nil {
		return StrategyHit{ID: id}
	}
	if snap := e.Snapshot(); snap != x.snap {
		x.snap, x.byID = snap, map[int64]StrategyHit{}
		for _, s := range snap.Strategies() {
			x.byID[s.Spec.StrategyID] = StrategyHit{ID: s.Spec.StrategyID, Name: s.Name(), Action: ruleAction(s.Spec.RuleAction)}
		}
	}
	if h, ok := x.byID[id]; ok {
		return h
	}
	return StrategyHit{ID: id}
}

func ruleAction(n int) string {
	switch n {
	case 1:
		return ActionAlert
	case 2:
		return ActionBlock
	case 3:
		return ActionAllow
	}
	return ""
}

// build turns an admission into its event.
func (x *strategyIndex) build(a *Admission, id [16]byte, clusterID string) *Event {
	ev := &Event{
		ID: hex.EncodeToString(id[:]), Type: TypeAdmission, Time: a.Time.UTC(), ClusterID: clusterID, UID: a.UID, Operation: a.Operation,
		DryRun: a.DryRun, Kind: a.Kind, Namespace: a.Namespace, Name: a.Name,
		User: User{Username: a.Username, Groups: a.Groups}, Authenticated: new(a.Authenticated), Client: a.Client, Images: []ImageEvent{},
	}
	if a.Engine != nil && a.Engine.ClusterID() != "" {
		ev.ClusterID = a.Engine.ClusterID()
	}
	d := a.Decision
	if d == nil || a.Err != nil {
		ev.Decision = DecisionDenied
		if a.Allowed {
			ev.Decision = DecisionAllowed
		}
		ev.Actions = []string{ActionError}
		if a.Err != nil {
			ev.Error = a.Err.Error()
		}
		for i := range a.Images {
			ev.Images = append(ev.Images, ImageEvent{Image: a.Images[i].Ref, Digest: a.Images[i].Digest, Action: ActionError})
		}
		return ev
	}
	ev.Decision = DecisionDenied
	if d.Allowed {
		ev.Decision = DecisionAllowed
	}
	ev.Violations, ev.Warnings = d.Violations, d.Warnings
	seen := map[string]bool{}
	for i := range d.Images {
		di := &d.Images[i]
		img := ImageEvent{Image: di.Image, Action: string(di.Action), Findings: di.Findings, Reasons: di.Reasons}
		var f *facts.Image
		if i < len(a.Facts) {
			f = a.Facts[i]
		}
		if f != nil {
			img.Digest = f.Digest
		}
		for _, sid := range di.Strategies {
			img.Strategies = append(img.Strategies, x.lookup(a.Engine, sid))
		}
		for _, att := range di.MissingAttestors {
			reason := "no verified signature"
			if f != nil && f.AttestorErrors[att] != "" {
				reason = f.AttestorErrors[att]
			}
			img.MissingAttestors = append(img.MissingAttestors, MissingAttestor{Attestor: att, Reason: reason})
		}
		if di.Action != rego.Pass && !seen[img.Action] {
			seen[img.Action] = true
			ev.Actions = append(ev.Actions, img.Action)
		}
		ev.Images = append(ev.Images, img)
	}
	if len(ev.Actions) == 0 {
		// Warnings without a strategy hit: verification errors admitted by
		// --on-verification-error=allow.
		ev.Actions = []string{ActionAlert}
	}
	return ev
}
