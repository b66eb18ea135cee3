// Package console drives imagegate's web console in headless Chromium
// (chromedp) against a real imagegate serve: sign-in, every view over an
// audit store holding known events, refusals, and the performance figures
// of docs/benchmarks.md. A module of its own, so the product's go.mod and
// `go test ./...` stay lean; make console-test runs it.
package console
