package rego

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

//go:embed build.rego
var buildModule string

//go:embed decision.rego
var decisionModule string

// decisionEntrypoint is the rule the engine evaluates, as a planner path.
const decisionEntrypoint = "imagegate/decision/result"

// decisionPlan is decision.rego compiled for execution. The module is
// embedded and takes the snapshot as input (the index), so one immutable
// plan serves every engine, like a package-level compiled regexp; what
// depends on the policy objects is compiled per snapshot (buildIndex).
var decisionPlan = sync.OnceValues(func() (*plan, error) {
	mod, err := ast.ParseModuleWithOpts("decision.rego", decisionModule, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("rego: decision module: %w", err)
	}
	return planDecision(context.Background(), mod, decisionModule, decisionEntrypoint)
})

// Engine decides admission for one policy snapshot and cluster. It is safe for
// concurrent use.
type Engine struct {
	snap     *policy.Snapshot
	opts     options
	plan     *plan
	required map[string][]string // namespace -> attestors; "" for the rest
	// policyAttestors: per BinarySecurityPolicy in force, its attestors.
	policyAttestors map[string][]string
	index           *ast.Term
	lookups         lookups
	attestors       attestorSets
	cache           *decisionCache
	images          imageValues
	// crossCheck, set only by tests, compares each result of the plan with
	// OPA's own evaluation of the same input.
	crossCheck func(ctx context.Context, input ast.Value, result *ast.Term) error
}

// Input is one request's subject: the namespace, the pod labels and the
// images with their facts (Facts[i] belongs to Images[i]; nil means nothing
// is known: unsigned and unscanned).
type Input struct {
	Namespace string
	Labels    map[string]string
	Images    []workload.Image
	Facts     []*facts.Image
}

// New compiles snap for the cluster the options name. All of the work that
// does not depend on a request happens here.
func New(ctx context.Context, snap *policy.Snapshot, opts ...Option) (*Engine, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, errors.New("rego: nil snapshot")
	}
	index, err := buildIndex(ctx, snap, o)
	if err != nil {
		return nil, err
	}
	e := &Engine{snap: snap, opts: o, cache: newDecisionCache(o.cacheSize)}
	if e.required, err = requiredAttestors(index); err != nil {
		return nil, err
	}
	e.index = index
	e.lookups = newLookups(index.Value.(ast.Object), snap)
	e.policyAttestors = map[string][]string{}
	each(index.Value.(ast.Object), "policyAttestors", func(id string, atts *ast.Term) { e.policyAttestors[id] = stringSet(atts) })
	if e.plan, err = decisionPlan(); err != nil {
		return nil, err
	}
	return e, nil
}

// Snapshot returns the policy snapshot the engine was built from.
func (e *Engine) Snapshot() *policy.Snapshot { return e.snap }

// ClusterID returns the cluster the engine decides for.
func (e *Engine) ClusterID() string { return e.opts.clusterID }

// RequiredAttestors returns the attestors every image in namespace must be
// signed by, so that fact gathering verifies only those.
func (e *Engine) RequiredAttestors(namespace string) []string {
	if a, ok := e.required[namespace]; ok {
		return a
	}
	return e.required[""]
}

// ImageAttestors returns the attestors the signature policies governing an
// image in namespace name (by their scopes and images globs), whatever
// their mode, so that fact gathering verifies those and no more; names are
// the image's name forms (workload.Image.Names). The decision itself is
// decision.rego's.
func (e *Engine) ImageAttestors(namespace string, names []string) []string {
	ns, ok := e.lookups.namespacePolicies(namespace).Value.(ast.Set)
	if !ok || ns.Len() == 0 {
		return nil
	}
	img, _ := e.lookups.policyIDs(names).Value.(ast.Set)
	if img == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	ns.Intersect(img).Foreach(func(p *ast.Term) {
		id, _ := p.Value.(ast.String)
		for _, a := range e.policyAttestors[string(id)] {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	})
	sort.Strings(out)
	return out
}

// Eval decides one request. It fails only when the decision cannot be made
// (a cancelled context, a broken module); callers must then fail closed. The
// returned Decision may be shared with other calls and must not be modified.
func (e *Engine) Eval(ctx context.Context, in Input) (*Decision, error) {
	if len(in.Facts) != 0 && len(in.Facts) != len(in.Images) {
		return nil, fmt.Errorf("rego: %d facts for %d images", len(in.Facts), len(in.Images))
	}
	request := e.toInput(in, e.opts.now())
	hash := request.Hash()
	if d, ok := e.cache.get(hash, request); ok {
		return d, nil
	}
	input := e.withIndex(request)
	var d *Decision
	err := e.plan.eval(ctx, ast.NewTerm(input), func(res *ast.Term) error {
		t := planResult(res)
		if t == nil {
			return errors.New("the decision was undefined")
		}
		if e.crossCheck != nil {
			if err := e.crossCheck(ctx, input, t); err != nil {
				return err
			}
		}
		var err error
		d, err = toDecision(t, in)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rego: evaluating decision: %w", err)
	}
	if e.cache != nil {
		e.cache.put(hash, request, d, inputCost(in))
	}
	return d, nil
}

func buildIndex(ctx context.Context, snap *policy.Snapshot, o options) (*ast.Term, error) {
	data, err := objectsData(snap, o)
	if err != nil {
		return nil, err
	}
	rs, err := rego.New(
		rego.Query("data.imagegate.build.index"),
		rego.Module("build.rego", buildModule),
		rego.Store(inmem.NewFromObject(data)),
		rego.StrictBuiltinErrors(true),
		rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }),
	).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("rego: building the index: %w", err)
	}
	if len(rs) != 1 {
		return nil, errors.New("rego: building the index: undefined")
	}
	return rs[0].Expressions[0].Value.(*ast.Term), nil
}

// objectsData is the policy set as build.rego reads it: the specs as JSON,
// with each strategy's display name.
func objectsData(snap *policy.Snapshot, o options) (map[string]any, error) {
	var strategies, policies []any
	for _, s := range snap.Strategies() {
		m, err := asMap(s.Spec)
		if err != nil {
			return nil, err
		}
		m["name"] = s.Name()
		strategies = append(strategies, m)
	}
	for _, p := range snap.Policies() {
		m, err := asMap(p.Spec)
		if err != nil {
			return nil, err
		}
		m["id"] = p.Metadata.Name // messages name the policy that would deny
		policies = append(policies, m)
	}
	return map[string]any{"imagegate": map[string]any{
		"config": map[string]any{
			"clusterId": o.clusterID,
			"failOpen":  o.failOpen,
		},
		"objects": map[string]any{"strategies": nonNil(strategies), "policies": nonNil(policies)},
	}}, nil
}

func nonNil(xs []any) []any {
	if xs == nil {
		return []any{}
	}
	return xs
}

func asMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func requiredAttestors(index *ast.Term) (map[string][]string, error) {
	obj, ok := index.Value.(ast.Object)
	if !ok {
		return nil, errors.New("rego: index is not an object")
	}
	out := map[string][]string{"": stringSet(obj.Get(ast.StringTerm("requiredDefault")))}
	if byNs, ok := obj.Get(ast.StringTerm("required")).Value.(ast.Object); ok {
		byNs.Foreach(func(k, v *ast.Term) {
			if ns, ok := k.Value.(ast.String); ok {
				out[string(ns)] = stringSet(v)
			}
		})
	}
	return out, nil
}

func stringSet(t *ast.Term) []string {
	var out []string
	if t == nil {
		return out
	}
	if s, ok := t.Value.(ast.Set); ok {
		s.Foreach(func(x *ast.Term) {
			if str, ok := x.Value.(ast.String); ok {
				out = append(out, string(str))
			}
		})
	}
	sort.Strings(out)
	return out
}
