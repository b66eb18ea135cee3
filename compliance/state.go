package compliance

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/inventory"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
)

// Workload actions, worst first: a workload's action is its worst image's.
// Error means it could not be decided.
const (
	ActionError    = audit.ActionError
	ActionBlock    = audit.ActionBlock
	ActionUnsigned = audit.ActionUnsigned
	ActionAlert    = audit.ActionAlert
	ActionAllow    = audit.ActionAllow
	ActionPass     = string(rego.Pass)
)

var rank = map[string]int{ActionPass: 0, ActionAllow: 1, ActionAlert: 2, ActionUnsigned: 3, ActionBlock: 4, ActionError: 5}

// Actions lists what the action filter accepts (and "violating").
var Actions = []string{ActionBlock, ActionUnsigned, ActionAlert, ActionError, ActionAllow, ActionPass}

// Violating reports whether a workload with this action breaks a policy now
// (or could not be decided).
func Violating(action string) bool { return rank[action] >= rank[ActionAlert] }

// Triggers: what made a workload be decided again.
const (
	TriggerStart     = "start"     // the first decision after start-up
	TriggerPod       = "pod"       // its pods changed
	TriggerPolicy    = "policy"    // the policy snapshot changed
	TriggerAttestor  = "attestor"  // only attestors changed
	TriggerScan      = "scan"      // a scan record of one of its images
	TriggerMalicious = "malicious" // the malicious feed named or cleared a digest
	TriggerScanAge   = "scan-age"  // a scan aged past --max-scan-age
	TriggerResync    = "resync"    // the periodic full pass
)

// Cause is why workloads were decided again.
type Cause struct {
	Trigger string `json:"trigger"`
	Detail  string `json:"detail,omitempty"`
}

// Image is one image of a workload's state.
type Image struct {
	Image            string                  `json:"image"`
	Digest           string                  `json:"digest,omitempty"`
	Action           string                  `json:"action"`
	Strategies       []audit.StrategyHit     `json:"strategies,omitempty"`
	MissingAttestors []audit.MissingAttestor `json:"missingAttestors,omitempty"`
	Reasons          []string                `json:"reasons,omitempty"`
}

// State is a workload's current decision. States are replaced, never
// modified, once published.
type State struct {
	Namespace  string    `json:"namespace"`
	Kind       string    `json:"kind"`
	Name       string    `json:"name"`
	Pods       int       `json:"pods"`
	Action     string    `json:"action"`
	Allowed    bool      `json:"allowed"`
	Images     []Image   `json:"images"`
	Violations []string  `json:"violations,omitempty"`
	Warnings   []string  `json:"warnings,omitempty"`
	Error      string    `json:"error,omitempty"`
	DecidedAt  time.Time `json:"decidedAt"`
	Cause      Cause     `json:"cause"`
	// ViolatingSince is when it last started violating; ResolvedAt when it
	// last stopped (zero while violating, or when it never did).
	ViolatingSince time.Time `json:"violatingSince,omitzero"`
	ResolvedAt     time.Time `json:"resolvedAt,omitzero"`

	key         inventory.Key
	pods        []string // pod names, for the annotating action
	digests     []string
	refs        []string // canonical references
	strategies  []int64
	expires     time.Time // the first scan to age past --max-scan-age
	fingerprint string
	outcome     admission.Outcome // the first pod group's, for audit events
}

// Key is the workload's key.
func (s *State) Key() inventory.Key { return s.key }

// PodNames are the workload's pods' names.
func (s *State) PodNames() []string { return s.pods }

// Outcome is the decision of the workload's first pod group, with its facts.
func (s *State) Outcome() admission.Outcome { return s.outcome }

// Violating reports whether the workload breaks a policy now.
func (s *State) Violating() bool { return s != nil && Violating(s.Action) }

// strategyNames maps strategy ids of one snapshot to their names and actions.
type strategyNames struct {
	snap *policy.Snapshot
	byID map[int64]audit.StrategyHit
}

func (x *strategyNames) lookup(e *rego.Engine, id int64) audit.StrategyHit {
	if e == nil {
		return audit.StrategyHit{ID: id}
	}
	if snap := e.Snapshot(); snap != x.snap {
		x.snap, x.byID = snap, map[int64]audit.StrategyHit{}
		for _, s := range snap.Strategies() {
			action := map[int]string{1: ActionAlert, 2: ActionBlock, 3: ActionAllow}[s.Spec.RuleAction]
			x.byID[s.Spec.StrategyID] = audit.StrategyHit{ID: s.Spec.StrategyID, Name: s.Name(), Action: action}
		}
	}
	if h, ok := x.byID[id]; ok {
		return h
	}
	return audit.StrategyHit{ID: id}
}

// merge adds one pod group's outcome to s.
func (s *State) merge(out admission.Outcome, err error, names *strategyNames, maxScanAge time.Duration, refs []string) {
	if s.outcome.Decision == nil && s.outcome.Engine == nil {
		s.outcome = out
	}
	s.refs = appendNew(s.refs, refs...)
	if err != nil || out.Decision == nil {
		s.Action, s.Allowed = ActionError, false
		if err != nil && !strings.Contains(s.Error, err.Error()) {
			s.Error = strings.TrimPrefix(s.Error+"; "+err.Error(), "; ")
		}
		return
	}
	d := out.Decision
	if !d.Allowed {
		s.Allowed = false
	}
	s.Violations = appendNew(s.Violations, d.Violations...)
	s.Warnings = appendNew(s.Warnings, d.Warnings...)
	for i := range d.Images {
		di := &d.Images[i]
		if slices.ContainsFunc(s.Images, func(img Image) bool { return img.Image == di.Image }) {
			continue
		}
		img := Image{Image: di.Image, Action: string(di.Action), Reasons: di.Reasons}
		f := factsAt(out, i)
		if f != nil {
			img.Digest = f.Digest
			if f.Digest != "" {
				s.digests = appendNew(s.digests, f.Digest)
			}
			if sc := f.Scan; sc != nil && maxScanAge > 0 && !sc.ScannedAt.IsZero() {
				if due := sc.ScannedAt.Add(maxScanAge); due.After(s.DecidedAt) && (s.expires.IsZero() || due.Before(s.expires)) {
					s.expires = due
				}
			}
		}
		for _, id := range di.Strategies {
			img.Strategies = append(img.Strategies, names.lookup(out.Engine, id))
			if !slices.Contains(s.strategies, id) {
				s.strategies = append(s.strategies, id)
			}
		}
		for _, a := range di.MissingAttestors {
			reason := "no verified signature"
			if f != nil && f.AttestorErrors[a] != "" {
				reason = f.AttestorErrors[a]
			}
			img.MissingAttestors = append(img.MissingAttestors, audit.MissingAttestor{Attestor: a, Reason: reason})
		}
		if rank[img.Action] > rank[s.Action] {
			s.Action = img.Action
		}
		s.Images = append(s.Images, img)
	}
}

// finish computes what changes are compared by.
func (s *State) finish() {
	var b strings.Builder
	b.WriteString(s.Action)
	b.WriteString("|" + s.Error)
	for _, img := range s.Images {
		b.WriteString("|" + img.Image + ">" + img.Action + ">")
		for _, h := range img.Strategies {
			b.WriteString(strconv.FormatInt(h.ID, 10) + ",")
		}
		for _, m := range img.MissingAttestors {
			b.WriteString(m.Attestor + ":" + m.Reason + ",")
		}
		b.WriteString(strings.Join(img.Reasons, "\n"))
	}
	s.fingerprint = b.String()
}

func factsAt(out admission.Outcome, i int) *facts.Image {
	if i < len(out.Facts) {
		return out.Facts[i]
	}
	return nil
}

func appendNew(dst []string, xs ...string) []string {
	for _, x := range xs {
		if !slices.Contains(dst, x) {
			dst = append(dst, x)
		}
	}
	return dst
}
