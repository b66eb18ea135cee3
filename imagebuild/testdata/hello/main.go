// Command hello stands in for imagegate in imagebuild's tests: a small
// binary that links one module dependency, so its SBOM lists one.
package main

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

func main() {
	b, _ := yaml.Marshal(map[string]string{"hello": "world"})
	fmt.Print(string(b))
}
