package attestation

import (
	"context"
	"time"
)

// fetchContext is ctx with an earlier deadline for registry fetches: the
// rest is kept for what follows them (local verification, the Rego
// decision, the answer). A registry slower than the request would otherwise
// use the whole budget, and the decision would then fail on the expired
// context instead of saying which attestor timed out, serving a stale
// result or applying --on-verification-error.
func (v *Verifier) fetchContext(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	left := time.Until(dl)
	reserve := max(time.Duration(float64(left)*v.opts.reserveFraction), v.opts.reserveFloor)
	reserve = min(reserve, left/2)
	return context.WithDeadline(ctx, dl.Add(-reserve))
}

// timedOut turns whatever a fetch returned into a timeout once its context
// is done: libraries report a cancelled read in many ways (a truncated
// body, a wrapped net error, a parse error), and none of them is the
// image's material, to be cached as a verdict.
func timedOut(ctx context.Context, what string, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if _, ok := err.(*UnverifiableError); ok {
		return err
	}
	return &UnverifiableError{Reason: what + ": timeout", Err: ctx.Err()}
}
