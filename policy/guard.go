package policy

import (
	"errors"
	"fmt"
	"sync"
)

// ErrEmptySet is why EmptyGuard refused a set.
var ErrEmptySet = errors.New("the new policy set has no BinarySecurityPolicy and no OpaStrategy")

// Enforces reports whether the snapshot can refuse anything: it has a
// BinarySecurityPolicy or an OpaStrategy (Attestors alone require nothing).
func (s *Snapshot) Enforces() bool { return len(s.policies) > 0 || len(s.strategies) > 0 }

// EmptyGuard keeps a set that enforces something from being replaced by
// one that enforces nothing. Deleting every policy file, or every custom
// resource, loads a perfectly valid empty set that admits every image:
// enforcement would end without an error anywhere. A watcher's caller asks
// Check before loading a set and reports Loaded after, for both sources.
// A start without policies is allowed (a fresh installation has none, and
// refusing it would leave the policy webhook unready, so that no policy
// could be applied); Status says so.
type EmptyGuard struct {
	allowEmpty bool

	mu        sync.Mutex
	inForce   *Snapshot // nil until a set loads
	refusedAt int       // policies and strategies of the set in force when the last one was refused; 0: none refused
}

// NewEmptyGuard returns a guard; allowEmpty lets empty sets replace
// enforcing ones (an operator removing every policy on purpose).
func NewEmptyGuard(allowEmpty bool) *EmptyGuard { return &EmptyGuard{allowEmpty: allowEmpty} }

// Check returns an error wrapping ErrEmptySet when snap enforces nothing,
// the set in force does and empty sets are not allowed.
func (g *EmptyGuard) Check(snap *Snapshot) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refusedAt = 0
	if g.allowEmpty || snap.Enforces() || g.inForce == nil || !g.inForce.Enforces() {
		return nil
	}
	g.refusedAt = len(g.inForce.policies) + len(g.inForce.strategies)
	return fmt.Errorf("%w; it would admit every image in place of a set of %d policies and strategies, which stays in force", ErrEmptySet, g.refusedAt)
}

// Loaded records snap as the set in force.
func (g *EmptyGuard) Loaded(snap *Snapshot) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inForce, g.refusedAt = snap, 0
}

// Status is a line for a readiness answer: why enforcement is not what
// the policy source holds (a refused empty set) or why it admits
// everything (an empty set in force); empty when neither.
func (g *EmptyGuard) Status() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.refusedAt > 0:
		return fmt.Sprintf("policy: an empty set was refused; the last good set (%d policies and strategies) stays in force", g.refusedAt)
	case g.inForce != nil && !g.inForce.Enforces():
		return "policy: no BinarySecurityPolicy or OpaStrategy is loaded; every image is admitted"
	}
	return ""
}
