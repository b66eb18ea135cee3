package rego

import (
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The decision spends most of its built-in calls on set algebra over
// strategy-id sets, and most of those results are empty or equal to an
// operand (an image no strategy can hit, a pod whose labels every strategy
// targets). These implementations of &, | and - return the shared empty set
// or the operand itself in those cases instead of a copy: the same set, and
// sets are never modified once built (the plan only adds to sets its own
// statements have just made). Anything but two sets goes to OPA's built-in
// (minus also subtracts numbers). The differential tests compare the
// results with OPA's evaluation.
type setOp func(at, bt *ast.Term, a, b ast.Set) *ast.Term

// fastOp answers a two-argument built-in call in the common cases, or says
// (false) to call OPA's implementation.
type fastOp func(a, b *ast.Term) (*ast.Term, bool)

// fastOps are the built-ins with a fast path, by the names the planner calls
// them.
var fastOps = map[string]fastOp{
	"and":          onSets(setIntersect),
	"or":           onSets(setUnion),
	"minus":        onSets(setDiff),
	"array.concat": concatArrays,
	"concat":       concatStrings,
}

func onSets(op setOp) fastOp {
	return func(at, bt *ast.Term) (*ast.Term, bool) {
		a, aok := at.Value.(ast.Set)
		b, bok := bt.Value.(ast.Set)
		if !aok || !bok {
			return nil, false
		}
		return op(at, bt, a, b), true
	}
}

// concatArrays is array.concat where one side is empty: the other array
// (most messages have no unsigned-attestor lines to prepend).
func concatArrays(at, bt *ast.Term) (*ast.Term, bool) {
	a, aok := at.Value.(*ast.Array)
	b, bok := bt.Value.(*ast.Array)
	switch {
	case !aok || !bok:
		return nil, false
	case a.Len() == 0:
		return bt, true
	case b.Len() == 0:
		return at, true
	}
	return nil, false
}

var emptySetTerm = ast.SetTerm()

func setIntersect(at, bt *ast.Term, a, b ast.Set) *ast.Term {
	if a.Len() > b.Len() {
		at, bt, a, b = bt, at, b, a
	}
	switch n := common(a, b); {
	case n == 0:
		return emptySetTerm
	case n == a.Len():
		return at
	}
	return ast.NewTerm(a.Intersect(b))
}

func setUnion(at, bt *ast.Term, a, b ast.Set) *ast.Term {
	if a.Len() < b.Len() {
		at, bt, a, b = bt, at, b, a
	}
	if common(b, a) == b.Len() {
		return at
	}
	return ast.NewTerm(a.Union(b))
}

func setDiff(at, bt *ast.Term, a, b ast.Set) *ast.Term {
	if a.Len() == 0 || b.Len() == 0 || common(a, b) == 0 {
		return at
	}
	return ast.NewTerm(a.Diff(b))
}

// common counts the elements of small that big contains.
func common(small, big ast.Set) int {
	n := 0
	if small.Len() == 0 || big.Len() == 0 {
		return 0
	}
	for _, t := range small.Slice() { // no copy: the set's own sorted keys
		if big.Contains(t) {
			n++
		}
	}
	return n
}

// concatStrings is concat(sep, array of strings), the message lines: joined
// straight from the array the plan is still building (see arrayBuilder),
// which then never becomes an ast.Array.
func concatStrings(sep, arr *ast.Term) (*ast.Term, bool) {
	s, ok := sep.Value.(ast.String)
	if !ok {
		return nil, false
	}
	var elems []*ast.Term
	switch a := arr.Value.(type) {
	case *arrayBuilder:
		elems = a.elems
	case *ast.Array:
		if a.Len() > 8 {
			return nil, false
		}
		var buf [8]*ast.Term
		elems = buf[:a.Len()]
		for i := range elems {
			elems[i] = a.Elem(i)
		}
	default:
		return nil, false
	}
	n := len(s) * max(len(elems)-1, 0)
	for _, e := range elems {
		str, ok := e.Value.(ast.String)
		if !ok {
			return nil, false
		}
		n += len(str)
	}
	var b strings.Builder
	b.Grow(n)
	for i, e := range elems {
		if i > 0 {
			b.WriteString(string(s))
		}
		b.WriteString(string(e.Value.(ast.String)))
	}
	return ast.StringTerm(b.String()), true
}
