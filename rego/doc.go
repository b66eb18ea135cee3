// Package rego holds imagegate's decisions (DESIGN.md §2) as embedded Rego
// modules and the Engine that runs them.
//
// An Engine is built once per policy snapshot and cluster: build.rego
// evaluates the policy objects into an index of strategy-id sets, the index is
// compiled into the decision module as constant data, and the query is
// prepared. A request then only calls Eval, which converts the facts straight
// to Rego values and combines sets; nothing is parsed or compiled per request.
package rego
