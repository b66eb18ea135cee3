package webhook

import (
	"context"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/workload"
)

// Auditor takes the decisions for audit events (audit.Recorder). Record is
// called on the admission path and must not block.
type Auditor interface {
	Record(audit.Admission)
}

var _ Auditor = (*audit.Recorder)(nil)

// outcomeDecider is a Decider that also tells what a decision was made on
// (admission.Decider); audit events then carry digests and strategy names.
type outcomeDecider interface {
	DecideOutcome(ctx context.Context, obj *workload.Object) (admission.Outcome, error)
}

var _ outcomeDecider = (*admission.Decider)(nil)

// decide asks the decider, for the outcome when an auditor wants it.
func (h *Handler) decide(ctx context.Context, obj *workload.Object) (admission.Outcome, error) {
	if od, ok := h.decider.(outcomeDecider); ok && h.opts.auditor != nil {
		return od.DecideOutcome(ctx, obj)
	}
	d, err := h.decider.Decide(ctx, obj)
	return admission.Outcome{Decision: d}, err
}

// audit hands one answered request to the auditor; the auditor decides
// whether it is an event.
func (h *Handler) audit(req *request, obj *workload.Object, out admission.Outcome, resp *response, err error) {
	if h.opts.auditor == nil {
		return
	}
	a := audit.Admission{
		UID: req.UID, Operation: req.Operation, Kind: req.Kind.Kind, Namespace: req.Namespace, Name: req.Name,
		Username: req.UserInfo.Username, Groups: req.UserInfo.Groups, DryRun: req.DryRun != nil && *req.DryRun,
		Authenticated: req.caller.authenticated, Client: req.caller.client,
		Decision: out.Decision, Facts: out.Facts, Engine: out.Engine, Err: err, Allowed: resp.Allowed,
	}
	if obj != nil {
		a.Kind, a.Namespace, a.Images = obj.Kind, obj.Namespace, obj.Images
		if a.Name == "" {
			a.Name = obj.Name
		}
	}
	if err != nil {
		a.Decision = nil
	}
	h.opts.auditor.Record(a)
}
