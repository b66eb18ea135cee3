package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/policy"
)

// FuzzParse: any file is either objects or errors with a file and a line;
// never a panic. Parsed objects build a snapshot or are refused with errors.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../examples/policies/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"apiVersion":"imagegate.dev/v1alpha1","kind":"OpaStrategy","metadata":{"name":"x"},"spec":{"strategyId":1,"clusterId":"c","ruleAction":2}}`))
	f.Add([]byte("---\n---\nkind: Attestor\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := policy.Parse("f.yaml", data)
		if err != nil {
			var errs policy.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T without field errors: %v", err, err)
			}
			return
		}
		snap, err := policy.NewSnapshot(objs...)
		if err == nil && snap.Digest() == "" {
			t.Fatal("snapshot without a digest")
		}
	})
}
