// Package rego holds imagegate's decisions (docs/semantics.md) as embedded Rego
// modules and the Engine that runs them.
//
// An Engine is built once per policy snapshot and cluster: build.rego
// evaluates the policy objects into an index of strategy-id sets and
// pre-rendered message parts. decision.rego, which takes the index as input,
// is compiled once per process by OPA's planner into its intermediate
// representation (plan.go) and executed by a small interpreter (exec.go)
// that uses OPA's built-in implementations; tests hold it to OPA's own
// evaluator, decision for decision. A request then only calls Eval, which
// converts the facts straight to Rego values; nothing is parsed or compiled
// per request.
package rego
