package rego

import (
	"context"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// CrossChecked makes e evaluate every request a second time with OPA's
// tree-walking evaluator (topdown) and fail when the two decisions differ:
// the plan executor must give exactly OPA's answers.
func CrossChecked(ctx context.Context, e *Engine) (*Engine, error) {
	q, err := topdownQuery()
	if err != nil {
		return nil, err
	}
	e.crossCheck = func(ctx context.Context, input ast.Value, got *ast.Term) error {
		rs, err := q.Eval(ctx, rego.EvalParsedInput(input))
		if err != nil {
			return fmt.Errorf("topdown: %w", err)
		}
		if len(rs) != 1 {
			return fmt.Errorf("topdown: the decision was undefined, the plan gave %v", got)
		}
		want := rs[0].Expressions[0].Value.(*ast.Term)
		if ast.Compare(want.Value, got.Value) != 0 {
			return fmt.Errorf("the plan and topdown differ:\nplan:    %v\ntopdown: %v", got, want)
		}
		return nil
	}
	return e, nil
}

// The decision module is the same for every engine: prepare it once.
var topdownQuery = sync.OnceValues(func() (rego.PreparedEvalQuery, error) {
	return rego.New(
		rego.Query("data.imagegate.decision.result"),
		rego.Module("decision.rego", decisionModule),
		rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }),
	).PrepareForEval(context.Background())
})

// The benchmark's strategies and pod, for engine_bench_test.go.
var (
	BenchStrategies = planBenchStrategies
	BenchInput      = planBenchInput
)
