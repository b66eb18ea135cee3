// Package cosignlib benchmarks the cosign library's VerifyImageSignatures,
// called once per attestor as a webhook built on it does, side by side with
// imagegate's Verifier on the same in-process registry. It is a module of
// its own so that the cosign library's dependencies stay out of imagegate's.
//
//	cd test/cosignlib && go test -run '^$' -bench . -benchtime 200x
package cosignlib
