package rego

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// plan is decision.rego compiled by OPA's planner (the compiler behind
// `opa build -t plan` and the Wasm target) into its intermediate
// representation, resolved for execution: functions and built-ins by index,
// constants as terms. OPA's tree-walking evaluator spends a microsecond or
// two on every expression of a rule; executing the planned statements costs
// tens of nanoseconds each, with the same semantics (the planner's) and
// OPA's own built-in implementations. The differential test in
// plan_test.go holds the two evaluators to the same decisions.
type plan struct {
	strings  []*ast.Term // the static string constants
	numbers  []*ast.Term // the same, as numbers, where the plan makes them
	funcs    map[string]*planFunc
	builtins map[string]topdown.BuiltinFunc
	blocks   []*ir.Block // the entrypoint's
	nlocals  int
	nmemo    int
	pool     sync.Pool // *machine
}

// callTarget is what a call statement calls: a function of the plan, or a
// built-in (with its fast path, if it has one).
type callTarget struct {
	fn      *planFunc
	builtin topdown.BuiltinFunc
	fast    fastOp
}

type planFunc struct {
	fn      *ir.Func
	memo    int // slot in the per-evaluation memo; -1 when not memoised
	nlocals int
	// memoArgs: a function called in a loop is remembered by its arguments
	// within an evaluation (see callKey); the others are not worth a key.
	memoArgs bool
	// A rule that reads neither input nor data (a constant such as the
	// verdict of an image nothing hits) is computed once per plan.
	constant bool
	once     sync.Once
	value    *ast.Term
	err      error
}

// planDecision compiles module (decision.rego) with entrypoint into a plan.
func planDecision(ctx context.Context, module *ast.Module, raw, entrypoint string) (*plan, error) {
	b := &bundle.Bundle{
		Modules: []bundle.ModuleFile{{Path: module.Package.Location.File, URL: module.Package.Location.File, Parsed: module, Raw: []byte(raw)}},
		Data:    map[string]any{},
	}
	c := compile.New().WithTarget(compile.TargetPlan).WithEntrypoints(entrypoint).WithBundle(b).WithOutput(&bytes.Buffer{})
	if err := c.Build(ctx); err != nil {
		return nil, fmt.Errorf("rego: planning %s: %w", entrypoint, err)
	}
	out := c.Bundle()
	if len(out.PlanModules) != 1 {
		return nil, fmt.Errorf("rego: planning %s: %d plans", entrypoint, len(out.PlanModules))
	}
	var pol ir.Policy
	if err := json.Unmarshal(out.PlanModules[0].Raw, &pol); err != nil {
		return nil, fmt.Errorf("rego: reading the plan of %s: %w", entrypoint, err)
	}
	return newPlan(&pol)
}

func newPlan(pol *ir.Policy) (_ *plan, err error) {
	defer func() {
		if r := recover(); r != nil { // a plan shape this executor does not know
			err = fmt.Errorf("rego: preparing the plan: %v", r)
		}
	}()
	if pol.Plans == nil || len(pol.Plans.Plans) != 1 {
		return nil, fmt.Errorf("rego: the policy has no single plan")
	}
	p := &plan{funcs: map[string]*planFunc{}, builtins: map[string]topdown.BuiltinFunc{}, blocks: pol.Plans.Plans[0].Blocks}
	if pol.Static != nil {
		for _, s := range pol.Static.Strings {
			p.strings = append(p.strings, ast.StringTerm(s.Value))
		}
		for _, b := range pol.Static.BuiltinFuncs {
			f := topdown.GetBuiltin(b.Name)
			if f == nil {
				return nil, fmt.Errorf("rego: the plan calls unknown built-in %s", b.Name)
			}
			p.builtins[b.Name] = f
		}
	}
	memo := 0
	if pol.Funcs != nil {
		for _, f := range pol.Funcs.Funcs {
			pf := &planFunc{fn: f, memo: -1, nlocals: maxLocal(f.Blocks, f.Params, f.Return) + 1}
			// Functions of input and data alone are rules: the same value
			// however often an evaluation reads them.
			if len(f.Params) == 2 {
				pf.memo = memo
				memo++
			}
			p.funcs[f.Name] = pf
		}
	}
	p.nmemo = memo
	p.nlocals = maxLocal(p.blocks, nil, 0) + 1
	p.numbers = make([]*ast.Term, len(p.strings))
	ir.Walk(checker(func(x any) {
		if s, ok := x.(*ir.MakeNumberRefStmt); ok && s.Index >= 0 && s.Index < len(p.strings) {
			p.numbers[s.Index] = ast.NewTerm(ast.Number(p.strings[s.Index].Value.(ast.String)))
		}
	}), pol)
	p.findConstants()
	if err := p.resolve(pol); err != nil {
		return nil, err
	}
	if err := p.computeConstants(); err != nil {
		return nil, err
	}
	return p, nil
}

// findConstants marks the rules whose blocks never read input or data, nor
// call a rule that does.
func (p *plan) findConstants() {
	reads := map[string]bool{} // rules reading input or data, directly or not
	calls := map[string][]string{}
	for name, f := range p.funcs {
		if len(f.fn.Params) != 2 {
			reads[name] = true
			continue
		}
		in, data := f.fn.Params[0], f.fn.Params[1]
		uses := func(o ir.Operand) bool {
			switch l := o.Value.(type) {
			case ir.Local:
				return l == in || l == data
			case *ir.Local:
				return *l == in || *l == data
			}
			return false
		}
		for _, b := range f.fn.Blocks {
			ir.Walk(checker(func(x any) {
				switch s := x.(type) {
				case *ir.CallStmt:
					if _, ok := p.funcs[s.Func]; ok {
						calls[name] = append(calls[name], s.Func)
						return // a rule's call passes input and data along
					}
					for _, a := range s.Args {
						if uses(a) {
							reads[name] = true
						}
					}
				case *ir.DotStmt:
					if uses(s.Source) {
						reads[name] = true
					}
				case *ir.AssignVarStmt:
					if uses(s.Source) {
						reads[name] = true
					}
				case *ir.AssignVarOnceStmt:
					if uses(s.Source) {
						reads[name] = true
					}
				case *ir.ScanStmt:
					if s.Source == in || s.Source == data {
						reads[name] = true
					}
				}
			}), b)
		}
	}
	for changed := true; changed; {
		changed = false
		for name, callees := range calls {
			for _, c := range callees {
				if reads[c] && !reads[name] {
					reads[name], changed = true, true
				}
			}
		}
	}
	for name, f := range p.funcs {
		f.constant = !reads[name]
	}
}

// computeConstants evaluates the constant rules now, so that no request's
// context (or cancellation) is ever part of them.
func (p *plan) computeConstants() error {
	m := p.machine(context.Background(), false)
	defer p.release(m)
	l := m.frame(2)
	l[ir.Input], l[ir.Data] = emptyObject, emptyObject
	args := []opnd{{local: ir.Input}, {local: ir.Data}}
	for name, f := range p.funcs {
		if !f.constant {
			continue
		}
		if _, err := m.callFunc(f, args, l); err != nil {
			return fmt.Errorf("rego: evaluating constant %s: %w", name, err)
		}
	}
	return nil
}

// resolve refuses a plan with statements the executor does not implement,
// when the plan is made rather than on a request, and replaces every call
// statement with a call that knows its target (see rewrite).
func (p *plan) resolve(pol *ir.Policy) error {
	var err error
	repeated := map[string]bool{} // functions called in a loop
	ir.Walk(checker(func(x any) {
		if err != nil {
			return
		}
		switch s := x.(type) {
		case *ir.CallStmt:
			_, isFunc := p.funcs[s.Func]
			if _, isBuiltin := p.builtins[s.Func]; !isFunc && !isBuiltin {
				err = fmt.Errorf("rego: the plan calls unknown function %s", s.Func)
			}
		case *ir.ScanStmt:
			ir.Walk(checker(func(y any) {
				if c, ok := y.(*ir.CallStmt); ok {
					repeated[c.Func] = true
				}
			}), s.Block)
		case *ir.WithStmt, *ir.CallDynamicStmt, *ir.ObjectMergeStmt:
			err = fmt.Errorf("rego: the plan uses %T, which imagegate does not execute", s)
		}
	}), pol)
	if err != nil {
		return err
	}
	for name, f := range p.funcs {
		f.memoArgs = repeated[name] && len(f.fn.Params) > 2
	}
	p.rewrite(p.blocks)
	for _, f := range p.funcs {
		p.rewrite(f.fn.Blocks)
	}
	return nil
}

// makeObject is a MakeObjectStmt that knows how many keys the statements
// after it insert (an object literal), so the object is made at its size.
type makeObject struct {
	*ir.MakeObjectStmt
	capacity int
}

func inserts(stmts []ir.Stmt, obj ir.Local) int {
	n := 0
	for _, s := range stmts {
		if o, ok := s.(*ir.ObjectInsertStmt); ok && o.Object == obj {
			n++
		}
	}
	return n
}

// call is a call statement with its target and arguments resolved.
type call struct {
	*ir.CallStmt
	target callTarget
	args   []opnd
}

// assign and dotOp are the two most frequent statements with their operands
// resolved.
type assign struct {
	*ir.AssignVarStmt
	src opnd
	dst ir.Local
}

type dotOp struct {
	*ir.DotStmt
	src, key opnd
	dst      ir.Local
}

// opnd resolves an operand: constants become their terms.
func (p *plan) opnd(o ir.Operand) opnd {
	switch v := o.Value.(type) {
	case *ir.Local:
		return opnd{local: *v}
	case ir.Local:
		return opnd{local: v}
	case *ir.StringIndex:
		return opnd{term: p.strings[*v]}
	case ir.StringIndex:
		return opnd{term: p.strings[v]}
	case *ir.Bool:
		return opnd{term: ast.InternedTerm(bool(*v))}
	case ir.Bool:
		return opnd{term: ast.InternedTerm(bool(v))}
	}
	panic(fmt.Sprintf("rego: unknown operand %T", o.Value)) // newPlan recovers it into an error
}

// rewrite replaces the call statements of blocks (nested ones too) with
// calls.
func (p *plan) rewrite(blocks []*ir.Block) {
	for _, b := range blocks {
		for i, stmt := range b.Stmts {
			switch s := stmt.(type) {
			case *ir.CallStmt:
				t := callTarget{fn: p.funcs[s.Func]}
				if t.fn == nil {
					t = callTarget{builtin: p.builtins[s.Func], fast: fastOps[s.Func]}
				}
				args := make([]opnd, len(s.Args))
				for j, a := range s.Args {
					args[j] = p.opnd(a)
				}
				b.Stmts[i] = &call{CallStmt: s, target: t, args: args}
			case *ir.AssignVarStmt:
				b.Stmts[i] = &assign{AssignVarStmt: s, src: p.opnd(s.Source), dst: s.Target}
			case *ir.DotStmt:
				b.Stmts[i] = &dotOp{DotStmt: s, src: p.opnd(s.Source), key: p.opnd(s.Key), dst: s.Target}
			case *ir.MakeObjectStmt:
				b.Stmts[i] = &makeObject{MakeObjectStmt: s, capacity: inserts(b.Stmts[i+1:], s.Target)}
			case *ir.BlockStmt:
				p.rewrite(s.Blocks)
			case *ir.ScanStmt:
				p.rewrite([]*ir.Block{s.Block})
			case *ir.NotStmt:
				p.rewrite([]*ir.Block{s.Block})
			}
		}
	}
}

type checker func(any)

func (c checker) Before(x any)                  { c(x) }
func (c checker) Visit(any) (ir.Visitor, error) { return c, nil }
func (checker) After(any)                       {}

// maxLocal is the highest local the blocks, parameters or return use, so that
// a frame is one slice.
func maxLocal(blocks []*ir.Block, params []ir.Local, ret ir.Local) int {
	m := ret
	for _, l := range params {
		m = max(m, l)
	}
	op := func(o ir.Operand) {
		switch l := o.Value.(type) {
		case ir.Local:
			m = max(m, l)
		case *ir.Local:
			m = max(m, *l)
		}
	}
	for _, b := range blocks {
		ir.Walk(checker(func(x any) {
			switch s := x.(type) {
			case *ir.ReturnLocalStmt:
				m = max(m, s.Source)
			case *ir.CallStmt:
				for _, a := range s.Args {
					op(a)
				}
				m = max(m, s.Result)
			case *ir.DotStmt:
				op(s.Source)
				op(s.Key)
				m = max(m, s.Target)
			case *ir.LenStmt:
				op(s.Source)
				m = max(m, s.Target)
			case *ir.ScanStmt:
				m = max(m, max(s.Source, s.Key, s.Value))
			case *ir.AssignIntStmt:
				m = max(m, s.Target)
			case *ir.AssignVarStmt:
				op(s.Source)
				m = max(m, s.Target)
			case *ir.AssignVarOnceStmt:
				op(s.Source)
				m = max(m, s.Target)
			case *ir.ResetLocalStmt:
				m = max(m, s.Target)
			case *ir.MakeNullStmt:
				m = max(m, s.Target)
			case *ir.MakeNumberIntStmt:
				m = max(m, s.Target)
			case *ir.MakeNumberRefStmt:
				m = max(m, s.Target)
			case *ir.MakeArrayStmt:
				m = max(m, s.Target)
			case *ir.MakeObjectStmt:
				m = max(m, s.Target)
			case *ir.MakeSetStmt:
				m = max(m, s.Target)
			case *ir.EqualStmt:
				op(s.A)
				op(s.B)
			case *ir.NotEqualStmt:
				op(s.A)
				op(s.B)
			case *ir.IsArrayStmt:
				op(s.Source)
			case *ir.IsObjectStmt:
				op(s.Source)
			case *ir.IsSetStmt:
				op(s.Source)
			case *ir.IsDefinedStmt:
				m = max(m, s.Source)
			case *ir.IsUndefinedStmt:
				m = max(m, s.Source)
			case *ir.ArrayAppendStmt:
				op(s.Value)
				m = max(m, s.Array)
			case *ir.ObjectInsertStmt:
				op(s.Key)
				op(s.Value)
				m = max(m, s.Object)
			case *ir.ObjectInsertOnceStmt:
				op(s.Key)
				op(s.Value)
				m = max(m, s.Object)
			case *ir.SetAddStmt:
				op(s.Value)
				m = max(m, s.Set)
			case *ir.ResultSetAddStmt:
				m = max(m, s.Value)
			}
		}), b)
	}
	return int(m)
}

var kResult = ast.StringTerm("result")

// planResult unwraps a plan's result, which the planner wraps as
// {"result": value}.
func planResult(t *ast.Term) *ast.Term {
	if t == nil {
		return nil
	}
	if o, ok := t.Value.(ast.Object); ok {
		return o.Get(kResult)
	}
	return nil
}
