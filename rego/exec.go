package rego

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Results of executing a block, besides a break: the block ran to its end,
// or a return statement ended the function.
const (
	fellThrough = -1
	returned    = -2
)

// errConflict is what OPA calls an eval_conflict_error: a complete rule or
// function with two different values. decision.rego has none by
// construction; the check keeps a broken edit from deciding silently.
var errConflict = errors.New("rego: a rule produced conflicting values")

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

// block runs b's statements against the frame l and returns fellThrough,
// returned, or the number of levels a break still has to leave (0: b itself).
func (m *machine) block(b *ir.Block, l []*ast.Term, res **ast.Term) (int, error) {
	for _, stmt := range b.Stmts {
		ok, k, err := m.stmt(stmt, l, res)
		if err != nil || k != fellThrough {
			return k, err
		}
		if !ok {
			return 0, nil
		}
	}
	return fellThrough, nil
}

// stmt executes one statement: ok false means it was undefined (the block
// ends); k other than fellThrough is a break or return leaving the block.
func (m *machine) stmt(stmt ir.Stmt, l []*ast.Term, res **ast.Term) (ok bool, k int, err error) {
	switch s := stmt.(type) {
	case *call:
		t, err := m.call(s, l)
		if err != nil || t == nil {
			return false, fellThrough, err
		}
		l[s.Result] = t
	case *assign:
		t := s.src.raw(l) // a copy of the reference: no need to finish an array
		if t == nil {
			return false, fellThrough, nil
		}
		l[s.dst] = t
	case *dotOp:
		src, key := s.src.get(l), s.key.get(l)
		if src == nil || key == nil {
			return false, fellThrough, nil
		}
		t := dot(src, key)
		if t == nil {
			return false, fellThrough, nil
		}
		l[s.dst] = t
	case *ir.DotStmt:
		src, key := m.operand(s.Source, l), m.operand(s.Key, l)
		if src == nil || key == nil {
			return false, fellThrough, nil
		}
		t := dot(src, key)
		if t == nil {
			return false, fellThrough, nil
		}
		l[s.Target] = t
	case *ir.AssignVarStmt:
		t := m.operand(s.Source, l)
		if t == nil {
			return false, fellThrough, nil
		}
		l[s.Target] = t
	case *ir.AssignVarOnceStmt:
		t := m.operand(s.Source, l)
		if t == nil {
			return false, fellThrough, nil
		}
		if cur := l[s.Target]; cur != nil && ast.Compare(cur.Value, t.Value) != 0 {
			return false, fellThrough, errConflict
		}
		l[s.Target] = t
	case *ir.BlockStmt:
		for _, sub := range s.Blocks {
			k, err := m.block(sub, l, res)
			if err != nil || k == returned {
				return false, k, err
			}
			if k > 0 {
				return false, k - 1, nil
			}
		}
	case *ir.BreakStmt:
		return false, int(s.Index), nil
	case *ir.ScanStmt:
		return m.scan(s, l, res)
	case *ir.NotStmt:
		k, err := m.block(s.Block, l, res)
		switch {
		case err != nil || k == returned:
			return false, k, err
		case k == fellThrough:
			return false, fellThrough, nil
		case k > 0:
			return false, k - 1, nil
		}
	case *ir.EqualStmt:
		a, b := m.operand(s.A, l), m.operand(s.B, l)
		if a == nil || b == nil || ast.Compare(a.Value, b.Value) != 0 {
			return false, fellThrough, nil
		}
	case *ir.NotEqualStmt:
		a, b := m.operand(s.A, l), m.operand(s.B, l)
		if a == nil || b == nil || ast.Compare(a.Value, b.Value) == 0 {
			return false, fellThrough, nil
		}
	case *ir.IsDefinedStmt:
		return l[s.Source] != nil, fellThrough, nil
	case *ir.IsUndefinedStmt:
		return l[s.Source] == nil, fellThrough, nil
	case *ir.IsArrayStmt:
		t := m.operand(s.Source, l)
		_, ok := valueOf(t).(*ast.Array)
		return ok, fellThrough, nil
	case *ir.IsObjectStmt:
		_, ok := valueOf(m.operand(s.Source, l)).(ast.Object)
		return ok, fellThrough, nil
	case *ir.IsSetStmt:
		_, ok := valueOf(m.operand(s.Source, l)).(ast.Set)
		return ok, fellThrough, nil
	case *ir.ResetLocalStmt:
		l[s.Target] = nil
	case *ir.MakeNullStmt:
		l[s.Target] = ast.InternedNullTerm
	case *ir.MakeNumberIntStmt:
		l[s.Target] = ast.InternedTerm(int(s.Value))
	case *ir.AssignIntStmt:
		l[s.Target] = ast.InternedTerm(int(s.Value))
	case *ir.MakeNumberRefStmt:
		l[s.Target] = m.p.numbers[s.Index]
	case *ir.MakeArrayStmt:
		b := m.builder()
		if s.Capacity > 0 {
			b.elems = make([]*ast.Term, 0, s.Capacity)
		}
		l[s.Target] = m.term(b)
	case *makeObject:
		l[s.Target] = m.term(ast.NewObjectWithCapacity(s.capacity))
	case *ir.MakeObjectStmt:
		l[s.Target] = ast.NewTerm(ast.NewObject())
	case *ir.MakeSetStmt:
		l[s.Target] = m.term(ast.NewSet())
	case *ir.ArrayAppendStmt:
		v, arr := m.operand(s.Value, l), l[s.Array]
		if v == nil || arr == nil {
			return false, fellThrough, nil
		}
		switch a := arr.Value.(type) {
		case *arrayBuilder:
			a.elems = append(a.elems, v)
		case *ast.Array:
			arr.Value = a.Append(v)
		default:
			return false, fellThrough, nil
		}
	case *ir.SetAddStmt:
		v := m.operand(s.Value, l)
		set, isSet := valueOf(l[s.Set]).(ast.Set)
		if v == nil || !isSet {
			return false, fellThrough, nil
		}
		set.Add(v)
	case *ir.ObjectInsertStmt, *ir.ObjectInsertOnceStmt:
		return m.insert(s, l)
	case *ir.LenStmt:
		n, ok := length(m.operand(s.Source, l))
		if !ok {
			return false, fellThrough, nil
		}
		l[s.Target] = ast.InternedTerm(n)
	case *ir.ResultSetAddStmt:
		if l[s.Value] != nil && *res == nil {
			*res = built(l[s.Value])
		}
	case *ir.ReturnLocalStmt:
		return false, returned, nil
	case *ir.NopStmt:
	default:
		return false, fellThrough, fmt.Errorf("rego: the plan uses %T, which imagegate does not execute", stmt)
	}
	return true, fellThrough, nil
}

func (m *machine) insert(stmt ir.Stmt, l []*ast.Term) (bool, int, error) {
	var key, value *ast.Term
	var obj ir.Local
	once := false
	switch s := stmt.(type) {
	case *ir.ObjectInsertStmt:
		key, value, obj = m.operand(s.Key, l), m.operand(s.Value, l), s.Object
	case *ir.ObjectInsertOnceStmt:
		key, value, obj, once = m.operand(s.Key, l), m.operand(s.Value, l), s.Object, true
	}
	o, isObj := valueOf(l[obj]).(ast.Object)
	if key == nil || value == nil || !isObj {
		return false, fellThrough, nil
	}
	if once {
		if cur := o.Get(key); cur != nil {
			if ast.Compare(cur.Value, value.Value) != 0 {
				return false, fellThrough, errConflict
			}
			return true, fellThrough, nil
		}
	}
	o.Insert(key, value)
	return true, fellThrough, nil
}

// scan runs the body for each element: array index and element, object key
// and value, set element twice.
func (m *machine) scan(s *ir.ScanStmt, l []*ast.Term, res **ast.Term) (bool, int, error) {
	if err := m.tick(); err != nil {
		return false, fellThrough, err
	}
	body := func(k, v *ast.Term) (stop bool, code int, err error) {
		l[s.Key], l[s.Value] = k, v
		code, err = m.block(s.Block, l, res)
		switch {
		case err != nil || code == returned:
			return true, code, err
		case code == 1:
			return true, fellThrough, nil
		case code >= 2:
			return true, code - 2, nil
		}
		return false, fellThrough, nil
	}
	var (
		stop bool
		code = fellThrough
		err  error
	)
	switch v := valueOf(built(l[s.Source])).(type) {
	case *ast.Array:
		for i := 0; i < v.Len() && !stop; i++ {
			stop, code, err = body(ast.InternedTerm(i), v.Elem(i))
		}
	case ast.Object:
		for _, k := range v.Keys() {
			if stop, code, err = body(k, v.Get(k)); stop {
				break
			}
		}
	case ast.Set:
		for _, e := range v.Slice() {
			if stop, code, err = body(e, e); stop {
				break
			}
		}
	}
	return true, code, err
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

func (m *machine) call(s *call, l []*ast.Term) (*ast.Term, error) {
	target := s.target
	if target.fn != nil {
		return m.callFunc(target.fn, s.args, l)
	}
	args := m.args[:0]
	for _, a := range s.args {
		// Fast paths take arrays still being built as they are.
		t := a.raw(l)
		if t == nil {
			return nil, nil
		}
		args = append(args, t)
	}
	m.args = args
	if target.fast != nil && len(args) == 2 {
		if t, ok := target.fast(args[0], args[1]); ok {
			return t, nil
		}
	}
	for _, a := range args {
		built(a)
	}
	m.out = nil
	if err := target.builtin(m.bctx, args, m.iter); err != nil {
		var halt topdown.Halt
		if errors.As(err, &halt) {
			return nil, err
		}
		return nil, nil // as OPA does without strict built-in errors: undefined
	}
	return m.out, nil
}

func (m *machine) callFunc(f *planFunc, args []opnd, l []*ast.Term) (*ast.Term, error) {
	if f.constant {
		f.once.Do(func() { f.value, f.err = m.run(f, args, l) })
		return f.value, f.err
	}
	if f.memo >= 0 && m.done[f.memo] {
		return m.memo[f.memo], nil
	}
	key, keyed := m.callKey(f, args, l)
	if keyed {
		if out, ok := m.calls[key]; ok {
			return out, nil
		}
	}
	out, err := m.run(f, args, l)
	if err != nil {
		return nil, err
	}
	if f.memo >= 0 {
		m.memo[f.memo], m.done[f.memo] = out, true
	}
	if keyed {
		if m.calls == nil {
			m.calls = map[callKey]*ast.Term{}
		}
		m.calls[key] = out
	}
	return out, nil
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

// run executes f with the arguments read from l.
func (m *machine) run(f *planFunc, args []opnd, l []*ast.Term) (*ast.Term, error) {
	if err := m.tick(); err != nil {
		return nil, err
	}
	frame := m.frame(f.nlocals)
	defer func() { m.sp -= f.nlocals }()
	for i, p := range f.fn.Params {
		t := args[i].get(l)
		if t == nil {
			return nil, nil
		}
		frame[p] = t
	}
	var res *ast.Term
	for i, b := range f.fn.Blocks {
		k, err := m.block(b, frame, &res)
		if err != nil {
			return nil, err
		}
		if k == returned || (k > 0) || i == len(f.fn.Blocks)-1 {
			break
		}
	}
	return built(frame[f.fn.Return]), nil
}

// opnd is an operand resolved when the plan is made: a constant term, or a
// local.
type opnd struct {
	term  *ast.Term
	local ir.Local
}

// raw is the operand's term, an array under construction as it is.
func (o opnd) raw(l []*ast.Term) *ast.Term {
	if o.term != nil {
		return o.term
	}
	return l[o.local]
}

func (o opnd) get(l []*ast.Term) *ast.Term { return built(o.raw(l)) }

func (m *machine) operand(o ir.Operand, l []*ast.Term) *ast.Term {
	return built(m.operandRaw(o, l))
}

// operandRaw is the operand's term, an array under construction as it is.
func (m *machine) operandRaw(o ir.Operand, l []*ast.Term) *ast.Term {
	switch v := o.Value.(type) {
	case *ir.Local: // as JSON decoding makes them
		return l[*v]
	case *ir.StringIndex:
		return m.p.strings[*v]
	case *ir.Bool:
		return ast.InternedTerm(bool(*v))
	case ir.Local:
		return l[v]
	case ir.StringIndex:
		return m.p.strings[v]
	case ir.Bool:
		return ast.InternedTerm(bool(v))
	}
	return nil
}

// arrayBuilder is an array the plan is still appending to (a comprehension).
// ast.Array's Append copies the array header on every call; the builder
// appends in place and becomes an ast.Array the first time anything reads
// it (built), which the planner only does once the array is complete.
type arrayBuilder struct {
	*ast.Array // never read: built replaces the builder before any use
	elems      []*ast.Term
}

// built returns t, turning an array under construction into its value.
// Every alias of t sees the same term, so later readers get the array too.
func built(t *ast.Term) *ast.Term {
	if t != nil {
		if b, ok := t.Value.(*arrayBuilder); ok {
			if len(b.elems) == 0 {
				t.Value = ast.InternedEmptyArrayValue // immutable: an append copies
			} else {
				t.Value = ast.NewArray(b.elems...)
			}
		}
	}
	return t
}

func valueOf(t *ast.Term) ast.Value {
	if t == nil {
		return nil
	}
	return t.Value
}

// dot is src[key]: an object's value, an array's element, a set's member.
func dot(src, key *ast.Term) *ast.Term {
	switch v := src.Value.(type) {
	case ast.Object:
		return v.Get(key)
	case *ast.Array:
		n, ok := key.Value.(ast.Number)
		if !ok {
			return nil
		}
		i, ok := n.Int()
		if !ok || i < 0 || i >= v.Len() {
			return nil
		}
		return v.Elem(i)
	case ast.Set:
		if v.Contains(key) {
			return key
		}
	}
	return nil
}

func length(t *ast.Term) (int, bool) {
	switch v := valueOf(t).(type) {
	case *ast.Array:
		return v.Len(), true
	case ast.Object:
		return v.Len(), true
	case ast.Set:
		return v.Len(), true
	case ast.String:
		return utf8.RuneCountInString(string(v)), true
	}
	return 0, false
}
