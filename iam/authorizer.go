package iam

import (
	"fmt"
	"strings"
	"time"
)

// AdminGroup is the group of the bootstrap administrators.
const AdminGroup = "imagegate:admins"

// EffectScope says whom a control policy bounds.
type EffectScope string

// Effect scopes, as Alibaba Cloud Resource Directory control policies name them.
const (
	ScopeAll EffectScope = "All" // everyone, administrators included
	ScopeRAM EffectScope = "RAM" // everyone but administrators
)

// Policy is a validated, compiled document.
type Policy struct {
	Doc        Document
	Text       string
	statements []*statement
}

type statement struct {
	index        int
	sid          string
	allow        bool
	notAction    bool
	notResource  bool
	notPrincipal bool
	hasPrincipal bool
	actions      []matcher
	resources    []matcher
	principals   []matcher
	conds        []condition
}

func (s *statement) applies(action, resource string, ctx map[string][]string) bool {
	if anyMatch(s.actions, action) == s.notAction {
		return false
	}
	if anyMatch(s.resources, resource) == s.notResource {
		return false
	}
	return s.condsHold(ctx)
}

func (s *statement) condsHold(ctx map[string][]string) bool {
	for i := range s.conds {
		if !s.conds[i].holds(ctx, s.allow) {
			return false
		}
	}
	return true
}

// Principal is an authenticated caller. A caller acting as an agency (an
// assumed token) is that agency: its own policies and groups do not apply.
type Principal struct {
	ID        string
	Groups    []string
	Agency    string    // set when acting as an assumed agency
	ExpiresAt time.Time // zero: does not expire
}

// Admin reports whether the principal is a bootstrap administrator.
func (p Principal) Admin() bool {
	if p.Agency != "" {
		return false
	}
	for _, g := range p.Groups {
		if g == AdminGroup {
			return true
		}
	}
	return false
}

// TargetAll attaches a policy to every caller.
const TargetAll = "*"

// ControlPolicy is a compiled control policy with the targets it is attached to.
type ControlPolicy struct {
	ID      string
	Scope   EffectScope
	Policy  *Policy
	Targets []string
}

// CustomPolicy is a compiled custom policy with the targets it is attached to
// (user:<id>, group:<name>, agency:<id>).
type CustomPolicy struct {
	ID      string
	Policy  *Policy
	Targets []string
}

type ref struct {
	policy string
	st     *statement
}

// Authorizer answers authorization requests over one set of policies and
// attachments; build a new one when they change.
type Authorizer struct {
	controlAll map[string][]ref // target -> statements of EffectScope All policies
	controlRAM map[string][]ref
	custom     map[string][]ref
}

// NewAuthorizer indexes policies by target.
func NewAuthorizer(control []ControlPolicy, custom []CustomPolicy) *Authorizer {
	a := &Authorizer{controlAll: map[string][]ref{}, controlRAM: map[string][]ref{}, custom: map[string][]ref{}}
	add := func(m map[string][]ref, id string, p *Policy, targets []string) {
		for _, t := range targets {
			for _, st := range p.statements {
				m[t] = append(m[t], ref{id, st})
			}
		}
	}
	for _, c := range control {
		m := a.controlAll
		if c.Scope == ScopeRAM {
			m = a.controlRAM
		}
		add(m, c.ID, c.Policy, c.Targets)
	}
	for _, c := range custom {
		add(a.custom, c.ID, c.Policy, c.Targets)
	}
	return a
}

// Request is one call to authorize.
type Request struct {
	Principal Principal
	Action    string // imagegate:<Operation>
	Resource  string // imagegate:<type>/<id>
	Context   map[string][]string
	Now       time.Time
}

// Reasons a decision was made.
const (
	ReasonExplicitDeny = "ExplicitDeny"
	ReasonControlBound = "ControlPolicyBound"
	ReasonAllow        = "Allow"
	ReasonAdmin        = "Admin"
	ReasonImplicitDeny = "ImplicitDeny"
	ReasonExpired      = "TokenExpired"
)

// Decision is the answer and what decided it.
type Decision struct {
	Allowed   bool
	Reason    string
	PolicyID  string // the deciding policy, when a statement decided
	Statement int    // index of the deciding statement; -1 when none
	Sid       string
}

func (d Decision) String() string {
	verdict := "refused"
	if d.Allowed {
		verdict = "allowed"
	}
	if d.PolicyID == "" {
		return fmt.Sprintf("%s (%s)", verdict, d.Reason)
	}
	s := fmt.Sprintf("%s (%s) by %s Statement[%d]", verdict, d.Reason, d.PolicyID, d.Statement)
	if d.Sid != "" {
		s += " (" + d.Sid + ")"
	}
	return s
}

func decided(allowed bool, reason string, r ref) Decision {
	return Decision{Allowed: allowed, Reason: reason, PolicyID: r.policy, Statement: r.st.index, Sid: r.st.sid}
}

// Authorize decides one request.
func (a *Authorizer) Authorize(req Request) Decision {
	p := req.Principal
	if !p.ExpiresAt.IsZero() && !req.Now.Before(p.ExpiresAt) {
		return Decision{Reason: ReasonExpired, Statement: -1}
	}
	action := strings.ToLower(req.Action)
	admin := p.Admin()
	var targetsBuf [8]string
	targets := append(targetsBuf[:0], TargetAll)
	if p.Agency != "" {
		targets = append(targets, "agency:"+p.Agency)
	} else {
		targets = append(targets, "user:"+p.ID)
		for _, g := range p.Groups {
			targets = append(targets, "group:"+g)
		}
	}
	maps := [3]map[string][]ref{a.controlAll, a.controlRAM, a.custom}
	if admin {
		maps[1] = nil
	}
	// Deny anywhere refuses.
	bounded := false
	for mi, m := range maps {
		for _, t := range targets {
			for _, r := range m[t] {
				if mi < 2 {
					bounded = true
				}
				if !r.st.allow && r.st.applies(action, req.Resource, req.Context) {
					return decided(false, ReasonExplicitDeny, r)
				}
			}
		}
	}
	if bounded && !a.controlAllows(maps[:2], targets, action, req) {
		return Decision{Reason: ReasonControlBound, Statement: -1}
	}
	for _, t := range targets {
		for _, r := range a.custom[t] {
			if r.st.allow && r.st.applies(action, req.Resource, req.Context) {
				return decided(true, ReasonAllow, r)
			}
		}
	}
	if admin {
		return Decision{Allowed: true, Reason: ReasonAdmin, Statement: -1}
	}
	return Decision{Reason: ReasonImplicitDeny, Statement: -1}
}

func (a *Authorizer) controlAllows(maps []map[string][]ref, targets []string, action string, req Request) bool {
	for _, m := range maps {
		for _, t := range targets {
			for _, r := range m[t] {
				if r.st.allow && r.st.applies(action, req.Resource, req.Context) {
					return true
				}
			}
		}
	}
	return false
}

// TrustAction is the action a trust policy must allow for a caller to assume
// the agency.
const TrustAction = "sts:agencies:assume"

// Trusts reports whether the trust policy lets caller perform action (an sts
// action): a matching Deny refuses, else a matching Allow grants. The caller
// is named in Principal.IAM by its id, user:<id>, group:<name> or "*".
func (p *Policy) Trusts(caller Principal, action string, ctx map[string][]string) Decision {
	action = strings.ToLower(action)
	names := []string{caller.ID, "user:" + caller.ID}
	for _, g := range caller.Groups {
		names = append(names, "group:"+g)
	}
	named := func(st *statement) bool {
		hit := false
		for _, n := range names {
			if anyMatch(st.principals, n) {
				hit = true
				break
			}
		}
		return hit != st.notPrincipal
	}
	for _, allow := range []bool{false, true} {
		for _, st := range p.statements {
			if st.allow != allow || !st.hasPrincipal || !named(st) {
				continue
			}
			if anyMatch(st.actions, action) == st.notAction {
				continue
			}
			if st.condsHold(ctx) {
				if !allow {
					return Decision{Reason: ReasonExplicitDeny, Statement: st.index, Sid: st.sid}
				}
				return Decision{Allowed: true, Reason: ReasonAllow, Statement: st.index, Sid: st.sid}
			}
		}
	}
	return Decision{Reason: ReasonImplicitDeny, Statement: -1}
}
