package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// The monitoring test's PromQL checks, on the expressions as Prometheus's
// own parser reads them: every selector names a series imagegate (or the
// API server) exposes, every label a matcher, by, without, on or ignoring
// names is on the series below it, vector-to-vector operations match label
// sets that can match, histogram_quantile gets le, and rate() and
// increase() get counters.

// labelSet is the label names an expression's result has; nil for a scalar.
type labelSet map[string]bool

func (s labelSet) String() string { return "{" + strings.Join(slices.Sorted(maps.Keys(s)), ", ") + "}" }

var promql = parser.NewParser(parser.Options{})

// checkExpr parses expr and checks it against c; it returns the names of
// the series expr selects.
func checkExpr(c catalog, expr string) ([]string, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	ch := &exprChecker{c: c}
	if _, err := ch.labels(e); err != nil {
		return nil, err
	}
	return ch.names, nil
}

type exprChecker struct {
	c     catalog
	names []string
}

func (ch *exprChecker) labels(n parser.Node) (labelSet, error) {
	switch n := n.(type) {
	case *parser.NumberLiteral, *parser.StringLiteral:
		return nil, nil
	case *parser.ParenExpr:
		return ch.labels(n.Expr)
	case *parser.UnaryExpr:
		return ch.labels(n.Expr)
	case *parser.SubqueryExpr:
		return ch.labels(n.Expr)
	case *parser.MatrixSelector:
		return ch.labels(n.VectorSelector)
	case *parser.VectorSelector:
		return ch.selector(n)
	case *parser.Call:
		return ch.call(n)
	case *parser.AggregateExpr:
		return ch.aggregate(n)
	case *parser.BinaryExpr:
		return ch.binary(n)
	}
	return nil, fmt.Errorf("%s: expression kind %T not checked", n, n)
}

func (ch *exprChecker) selector(n *parser.VectorSelector) (labelSet, error) {
	name := n.Name
	for _, m := range n.LabelMatchers {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			name = m.Value
		}
	}
	s, ok := ch.c[name]
	if !ok {
		return nil, fmt.Errorf("%s: no series %q in imagegate serve's /metrics", n, name)
	}
	ch.names = append(ch.names, name)
	out := labelSet{}
	for l := range s.labels {
		out[l] = true
	}
	for _, l := range targetLabels {
		out[l] = true
	}
	for _, m := range n.LabelMatchers {
		if m.Name != labels.MetricName && !out[m.Name] {
			return nil, fmt.Errorf("%s: %s has no label %q (it has %s)", n, name, m.Name, labelSet(s.labels))
		}
	}
	return out, nil
}

func (ch *exprChecker) call(n *parser.Call) (labelSet, error) {
	args := make([]labelSet, len(n.Args))
	for i, a := range n.Args {
		var err error
		if args[i], err = ch.labels(a); err != nil {
			return nil, err
		}
	}
	switch n.Func.Name {
	case "rate", "increase", "irate":
		ms, ok := n.Args[0].(*parser.MatrixSelector)
		if !ok {
			return nil, fmt.Errorf("%s: %s of a subquery is not checked", n, n.Func.Name)
		}
		vs := ms.VectorSelector.(*parser.VectorSelector)
		if name := ch.names[len(ch.names)-1]; !ch.c[name].counter {
			return nil, fmt.Errorf("%s: %s of %s, which is not a counter", vs, n.Func.Name, name)
		}
	case "histogram_quantile":
		if !args[1]["le"] {
			return nil, fmt.Errorf("%s: histogram_quantile of series without le %s", n, args[1])
		}
		out := clone(args[1])
		delete(out, "le")
		return out, nil
	case "time", "scalar":
		return nil, nil
	case "vector":
		return labelSet{}, nil
	}
	for i, t := range n.Func.ArgTypes {
		if i < len(args) && (t == parser.ValueTypeVector || t == parser.ValueTypeMatrix) {
			return args[i], nil
		}
	}
	return nil, fmt.Errorf("%s: function %s not checked", n, n.Func.Name)
}

func (ch *exprChecker) aggregate(n *parser.AggregateExpr) (labelSet, error) {
	in, err := ch.labels(n.Expr)
	if err != nil {
		return nil, err
	}
	if n.Param != nil {
		if _, err := ch.labels(n.Param); err != nil {
			return nil, err
		}
	}
	for _, g := range n.Grouping {
		if !in[g] {
			return nil, fmt.Errorf("%s: groups by %q, which %s does not have (it has %s)", n, g, n.Expr, in)
		}
	}
	if n.Without {
		out := clone(in)
		for _, g := range n.Grouping {
			delete(out, g)
		}
		return out, nil
	}
	out := labelSet{}
	for _, g := range n.Grouping {
		out[g] = true
	}
	return out, nil
}

func (ch *exprChecker) binary(n *parser.BinaryExpr) (labelSet, error) {
	l, err := ch.labels(n.LHS)
	if err != nil {
		return nil, err
	}
	r, err := ch.labels(n.RHS)
	if err != nil {
		return nil, err
	}
	if l == nil || r == nil { // a scalar on either side matches every series
		if l == nil {
			return r, nil
		}
		return l, nil
	}
	vm := n.VectorMatching
	if vm != nil && (vm.On || len(vm.MatchingLabels) > 0) {
		for _, m := range vm.MatchingLabels {
			if !l[m] || !r[m] {
				return nil, fmt.Errorf("%s: matches on %q, which %s or %s lacks", n, m, l, r)
			}
		}
	} else if n.Op != parser.LOR && !maps.Equal(l, r) {
		// Matching on every label: sides with different label sets
		// never match, and the expression is always empty.
		return nil, fmt.Errorf("%s: the sides have different labels, %s and %s, and would never match", n, l, r)
	}
	switch {
	case n.Op == parser.LOR:
		out := clone(l)
		maps.Copy(out, r)
		return out, nil
	case vm != nil && vm.On && vm.Card == parser.CardOneToOne && !n.Op.IsSetOperator() && !n.Op.IsComparisonOperator():
		out := labelSet{}
		for _, m := range vm.MatchingLabels {
			out[m] = true
		}
		return out, nil
	}
	return l, nil
}

func clone(s labelSet) labelSet {
	out := labelSet{}
	maps.Copy(out, s)
	return out
}

// TestCheckExpr: the checker itself finds each kind of mistake it is for.
func TestCheckExpr(t *testing.T) {
	c := catalog{
		"req_total":          {labels: labelSet{"decision": true}, counter: true},
		"lat_seconds_bucket": {labels: labelSet{"decision": true, "le": true}, counter: true},
		"up_gauge":           {labels: labelSet{}},
	}
	for _, tt := range []struct {
		expr, err string // err: "" for a good expression
	}{
		{`sum by (decision) (rate(req_total{decision="denied", namespace=~".*"}[5m]))`, ""},
		{`histogram_quantile(0.99, sum by (le, job) (rate(lat_seconds_bucket[5m]))) > 0.8 * 10 # timeout`, ""},
		{`sum by (job) (rate(req_total{decision="error"}[5m])) / sum by (job) (rate(req_total[5m])) > 0.01`, ""},
		{`min(up_gauge) - time() < 3 * 86400`, ""},
		{`max by (job) (up_gauge) == 1 or max by (job, decision) (req_total) == 1`, ""},
		{`sum(rate(req_totals[5m]))`, `no series "req_totals"`},
		{`sum(rate(req_total{decison="denied"}[5m]))`, `has no label "decison"`},
		{`sum by (result) (rate(req_total[5m]))`, `groups by "result"`},
		{`histogram_quantile(0.9, sum by (job) (rate(lat_seconds_bucket[5m])))`, "without le"},
		{`rate(up_gauge[5m])`, "not a counter"},
		{`sum by (job) (req_total) / sum by (namespace) (req_total)`, "would never match"},
		{`sum by (job) (req_total) / on (decision) sum by (job) (req_total)`, `matches on "decision"`},
		{`sum(rate(req_total[5m])`, "unclosed"},
	} {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := checkExpr(c, tt.expr)
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("error %v, want one with %q", err, tt.err)
			}
		})
	}
}
