package rego

import (
	"testing"

	"github.com/imagegate/imagegate/policy"
)

// TestGlobPrefilter: the literal prefix/suffix check never changes what a
// pattern matches.
func TestGlobPrefilter(t *testing.T) {
	patterns := []string{"svc-1-*", "*-debug", "v1.*", "a?c", "[ab]x*y", "x*a]b", "*", "?", "team/*/app", "lit"}
	inputs := []string{"", "svc-1-", "svc-1-x", "svc-10", "app-debug", "debug", "v1.2", "v12", "abc", "ac", "axzy", "bxy", "cxy", "xa]b", "xqa]b", "team/a/app", "team/app", "lit", "lit2", "x"}
	empty, err := policy.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range patterns {
		t.Run(p, func(t *testing.T) {
			g, err := policy.CompileGlob(p)
			if err != nil {
				t.Fatal(err)
			}
			gs := compiled(empty, p, nil)
			for _, in := range inputs {
				if got, want := gs.match(in), g.Match(in); got != want {
					t.Errorf("match(%q) = %v, want %v (prefix %q, suffix %q)", in, got, want, gs.prefix, gs.suffix)
				}
			}
		})
	}
}
