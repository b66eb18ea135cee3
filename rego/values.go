package rego

import (
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
)

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

// operand reads an operand of a statement rewrite left as it is (the rare
// ones), through the same resolution.
func (m *machine) operand(o ir.Operand, l []*ast.Term) *ast.Term {
	return m.p.opnd(o).get(l)
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
