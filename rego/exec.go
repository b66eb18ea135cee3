// The statements of a plan (plan.go), executed by a machine (machine.go).

package rego

import (
	"errors"
	"fmt"

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
	default: // including call, assignment, lookup and object statements rewrite missed
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
