// Command crdgen writes imagegate's CustomResourceDefinitions, generated from
// the policy Go types by package kube, into each directory it is given
// (make generate: deploy/crds and the Helm chart's crds/).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/imagegate/imagegate/kube"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crdgen DIR...")
		os.Exit(2)
	}
	crds, err := kube.CRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, dir := range os.Args[1:] {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for name, b := range crds {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	}
}
