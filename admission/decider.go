package admission

import (
	"context"
	"fmt"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/workload"
)

// EngineProvider returns the engine in force; the webhook swaps engines when
// policies change.
type EngineProvider interface {
	Engine() *rego.Engine
}

// Decider decides workloads with an engine and a facts source.
type Decider struct {
	engines       EngineProvider
	facts         facts.Source
	scanAttestors []string
}

// Option configures a Decider.
type Option func(*Decider)

// WithScanAttestors names the attestors whose vulnerability attestations
// count as scan results (--scan-attestors).
func WithScanAttestors(names ...string) Option {
	return func(d *Decider) { d.scanAttestors = append(d.scanAttestors, names...) }
}

// NewDecider returns a Decider. A nil source knows nothing: every image is
// unsigned and unscanned.
func NewDecider(engines EngineProvider, source facts.Source, opts ...Option) *Decider {
	if source == nil {
		source = facts.None{}
	}
	d := &Decider{engines: engines, facts: source}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Decide gathers facts for obj and evaluates it.
func (d *Decider) Decide(ctx context.Context, obj *workload.Object) (*rego.Decision, error) {
	o, err := d.DecideOutcome(ctx, obj)
	return o.Decision, err
}

// Outcome is a decision with what it was made on, for audit events. Nothing
// in it may be modified: the decision may be shared through the engine's
// cache, the facts with the sources' caches.
type Outcome struct {
	Decision *rego.Decision
	Facts    []*facts.Image // Facts[i] belongs to the decision's Images[i]; may be nil
	Engine   *rego.Engine   // the engine (snapshot and cluster) that decided
}

// DecideOutcome is Decide returning the facts and engine too.
func (d *Decider) DecideOutcome(ctx context.Context, obj *workload.Object) (Outcome, error) {
	e := d.engines.Engine()
	if e == nil {
		return Outcome{}, fmt.Errorf("admission: no policy snapshot loaded")
	}
	perImage := make([][]*policy.Attestor, len(obj.Images))
	for i := range obj.Images {
		perImage[i] = resolve(e, e.ImageAttestors(obj.Namespace, obj.Images[i].Names))
	}
	fs, err := d.facts.Facts(ctx, facts.Request{Namespace: obj.Namespace, Images: obj.Images,
		Attestors: resolve(e, e.RequiredAttestors(obj.Namespace)), ImageAttestors: perImage, ScanAttestors: resolve(e, d.scanAttestors),
		ServiceAccount: obj.ServiceAccount, PullSecrets: obj.PullSecrets})
	if err != nil {
		return Outcome{Engine: e}, fmt.Errorf("admission: gathering facts: %w", err)
	}
	dec, err := e.Eval(ctx, rego.Input{Namespace: obj.Namespace, Labels: obj.Labels, Images: obj.Images, Facts: fs})
	return Outcome{Decision: dec, Facts: fs, Engine: e}, err
}

// Static is an EngineProvider with one engine.
type Static struct{ E *rego.Engine }

// Engine returns the engine.
func (s Static) Engine() *rego.Engine { return s.E }

var _ EngineProvider = Static{}

// resolve finds named attestors in the engine's snapshot; a name the
// snapshot lacks is skipped (policies were validated to name known ones).
func resolve(e *rego.Engine, names []string) []*policy.Attestor {
	var out []*policy.Attestor
	for _, name := range names {
		if a, ok := e.Snapshot().Attestor(name); ok {
			out = append(out, a)
		}
	}
	return out
}
