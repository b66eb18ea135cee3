//go:build tools

package tools

// The blank import records kube-apiserver's dependencies in go.mod and
// go.sum (go mod tidy considers every build tag); nothing compiles this file.
import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
