// Package tools is a module of its own whose only job is to pin, and build,
// the kube-apiserver the end-to-end tests (test/e2e) run against:
//
//	cd test/tools && go build -o DIR/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
//
// scripts/e2e-tools.sh does that, once per version, into a cache directory.
// k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/apiserver,
// ...) at v0.0.0 and replaces them with directories of its own repository, so
// go.mod replaces every one of them with the release matching
// k8s.io/kubernetes v1.X.Y, which is v0.X.Y. To move to another release,
// change all of those versions together and run go mod tidy.
package tools
