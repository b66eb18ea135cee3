package rego

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// machine executes a plan for one evaluation; it is not shared.
//
// Block nesting follows OPA's Wasm backend, the planner's reference: a break
// leaves as many levels as its index says, counting the current block as 0;
// a scan is two levels (its body, where a break continues with the next
// element, and the loop, where it ends the scan); a negation is one.
type machine struct {
	ctx   context.Context
	p     *plan
	memo  []*ast.Term
	done  []bool
	bctx  topdown.BuiltinContext
	out   *ast.Term
	iter  func(*ast.Term) error
	args  []*ast.Term
	steps int
	// Frames are cut from one slab, reused across evaluations through the
	// plan's pool: most functions run once per image or per hit.
	stack []*ast.Term
	sp    int
	// Slabs for the terms and array builders statements make, reused by the
	// next evaluation (scratch only).
	scratch  bool
	terms    []ast.Term
	nt       int
	builders []arrayBuilder
	nb       int
	hw       int // the highest sp of this evaluation: what release clears
	calls    map[callKey]*ast.Term
}

// term wraps v in a term: from the slab when the evaluation is scratch.
func (m *machine) term(v ast.Value) *ast.Term {
	if !m.scratch {
		return ast.NewTerm(v)
	}
	if m.nt == len(m.terms) {
		// Terms already handed out keep the old slab.
		m.terms, m.nt = make([]ast.Term, max(2*len(m.terms), 64)), 0
	}
	t := &m.terms[m.nt]
	m.nt++
	t.Value = v
	return t
}

func (m *machine) builder() *arrayBuilder {
	if !m.scratch {
		return &arrayBuilder{}
	}
	if m.nb == len(m.builders) {
		m.builders, m.nb = make([]arrayBuilder, max(2*len(m.builders), 32)), 0
	}
	b := &m.builders[m.nb]
	m.nb++
	return b
}

// frame returns n cleared locals on the stack.
func (m *machine) frame(n int) []*ast.Term {
	if m.sp+n > len(m.stack) {
		// Frames already handed out keep the old slab.
		m.stack = make([]*ast.Term, max(2*len(m.stack), m.sp+n+256))
	}
	f := m.stack[m.sp : m.sp+n : m.sp+n]
	clear(f)
	m.sp += n
	m.hw = max(m.hw, m.sp)
	return f
}

// eval runs the plan on input and calls use with the result, which is valid
// only during that call: the evaluation's terms are cut from slabs the next
// evaluation reuses. use must copy out what it keeps (Decision holds only Go
// values).
func (p *plan) eval(ctx context.Context, input *ast.Term, use func(*ast.Term) error) (err error) {
	defer func() {
		// A webhook never panics: an executor bug fails this request closed.
		if r := recover(); r != nil {
			err = fmt.Errorf("rego: executing the plan: %v", r)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	m := p.machine(ctx, true)
	defer p.release(m)
	l := m.frame(p.nlocals)
	l[ir.Input] = input
	l[ir.Data] = emptyObject // decision.rego reads nothing from data
	var res *ast.Term
	for _, b := range p.blocks {
		if _, err := m.block(b, l, &res); err != nil {
			return err
		}
	}
	return use(res)
}

// machine takes a machine from the pool. With scratch, the terms and arrays
// its statements make come from its slabs (see eval); without, from the heap
// (the constants, which outlive any evaluation).
func (p *plan) machine(ctx context.Context, scratch bool) *machine {
	m, _ := p.pool.Get().(*machine)
	if m == nil {
		m = &machine{p: p, memo: make([]*ast.Term, p.nmemo), done: make([]bool, p.nmemo)}
		m.iter = func(t *ast.Term) error { m.out = t; return nil }
	}
	m.ctx, m.bctx, m.scratch = ctx, topdown.BuiltinContext{Context: ctx}, scratch
	return m
}

// release returns m to the pool without the values of this evaluation.
func (p *plan) release(m *machine) {
	// Clearing costs what was used, not what an earlier, larger evaluation
	// left allocated (the pool is shared by every engine).
	clear(m.stack[:min(m.hw, len(m.stack))])
	clear(m.memo)
	clear(m.done)
	clear(m.args[:cap(m.args)])
	if len(m.calls) > 64 {
		m.calls = nil
	} else {
		clear(m.calls)
	}
	clear(m.terms[:m.nt])
	clear(m.builders[:m.nb])
	m.nt, m.nb = 0, 0
	m.sp, m.hw, m.steps, m.out, m.ctx, m.bctx = 0, 0, 0, nil, nil, topdown.BuiltinContext{}
	p.pool.Put(m)
}

// tick checks the context now and then, so that a cancelled request stops
// the evaluation (the webhook answers by its deadline either way).
func (m *machine) tick() error {
	m.steps++
	if m.steps%64 == 0 {
		return m.ctx.Err()
	}
	return nil
}

// callKey identifies a call of a function by its arguments: strings and
// numbers by value, anything else by its term (the same term is the same
// value). Functions are pure, so a repeated call (a reason shared by many
// strategies, explained once per image) is answered from the evaluation's
// memo, as OPA's evaluator caches function calls. Equal composite values in
// different terms are simply computed again.
type callKey struct {
	f    *planFunc
	args [3]argKey
}

type argKey struct {
	t    *ast.Term
	s    string
	kind byte // 's' string, 'n' number, 0 by term
}

func (m *machine) callKey(f *planFunc, args []opnd, l []*ast.Term) (callKey, bool) {
	k := callKey{f: f}
	if !f.memoArgs || len(args) > 2+len(k.args) {
		return k, false // rules have their own memo; longer calls go uncached
	}
	for i, a := range args[2:] {
		t := a.get(l)
		switch v := valueOf(t).(type) {
		case nil:
			return k, false
		case ast.String:
			k.args[i].s, k.args[i].kind = string(v), 's'
		case ast.Number:
			k.args[i].s, k.args[i].kind = string(v), 'n'
		default:
			k.args[i].t = t
		}
	}
	return k, true
}
