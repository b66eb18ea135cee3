package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/imagegate/imagegate/iam"
)

// ConsoleActions are the read operations of the web console that have no
// API operation of their own: reading audit events (with imagegate:Namespace
// when the query names one) and deciding a pasted manifest. Policy
// documents name them as imagegate:ListEvents and imagegate:CheckWorkload.
var ConsoleActions = []string{ActionListEvents, ActionCheckWorkload}

// The console's own operations.
const (
	ActionListEvents    = "ListEvents"
	ActionCheckWorkload = "CheckWorkload"
)

// Resources of the console's operations.
const (
	EventResource    = "imagegate:event/*"
	WorkloadResource = "imagegate:workload/*"
)

// ErrUnknownToken is a token no authenticator knows (or an expired or
// revoked assumed-agency token).
var ErrUnknownToken = errors.New("unknown or expired token")

// ErrAuthUnavailable is a token that could not be checked (the API server
// did not answer a TokenReview): not the caller's fault.
var ErrAuthUnavailable = errAuthUnavailable

// Authenticate finds who a bearer token belongs to exactly as an API call
// with it would: the tokens file, TokenReview, or an assumed agency's
// token (whose trust policy is asked again). r gives the condition keys.
func (h *Handler) Authenticate(r *http.Request, token string) (iam.Principal, error) {
	rr := r.Clone(r.Context())
	rr.Header = http.Header{"Authorization": {"Bearer " + strings.TrimSpace(token)}}
	p, err := h.authenticate(rr, nil, h.opts.now())
	switch {
	case err == nil:
		return p, nil
	case errors.Is(err, errAuthUnavailable):
		return iam.Principal{}, err
	}
	return iam.Principal{}, errors.Join(ErrUnknownToken, err)
}

// Authorize decides op (an operation name, e.g. ListEvents) on resource for
// p with the request's condition keys plus extra, under the IAM state in
// force, and records the decision as an API call audit event. The error
// is nil when allowed and says which policy refused otherwise.
func (h *Handler) Authorize(r *http.Request, p iam.Principal, op, resource string, extra map[string][]string) error {
	c := &call{h: h, r: r, id: newRequestID(), now: h.opts.now(), principal: p}
	c.ev = Event{Time: c.now, RequestID: c.id, SourceIP: remoteIP(r), Statement: -1,
		Principal: p.ID, Groups: p.Groups, Agency: p.Agency}
	err := c.authorize(op, resource, extra)
	c.ev.Status = http.StatusOK
	if err != nil {
		c.ev.Status, c.ev.Code = http.StatusForbidden, "NoPermission"
	}
	h.emit(c.ev)
	if err != nil {
		return &DeniedError{Action: "imagegate:" + op, Resource: resource, Reason: c.ev.Decision}
	}
	return nil
}

// Decide is Authorize without the audit record: for what a page offers,
// and for repeats of a read already recorded.
func (h *Handler) Decide(r *http.Request, p iam.Principal, op, resource string, extra map[string][]string) bool {
	ctx := requestContext(r, h.opts.now())
	ctx[iam.KeyPrincipal] = []string{p.ID}
	for k, v := range extra {
		if len(v) > 0 {
			ctx[k] = v
		}
	}
	return h.state.load().auth.Authorize(iam.Request{Principal: p, Action: "imagegate:" + op, Resource: resource, Context: ctx, Now: h.opts.now()}).Allowed
}

// DeniedError is a refused console read.
type DeniedError struct {
	Action, Resource, Reason string
}

func (e *DeniedError) Error() string {
	return "no permission for " + e.Action + " on " + e.Resource + " (" + e.Reason + ")"
}
