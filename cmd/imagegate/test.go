package main

import (
	"context"
	"fmt"
	"io"

	"github.com/imagegate/imagegate/check"
)

// runTest runs the policy tests under each DIR: exit 0 when every
// expectation holds, 1 when one does not, 2 when a test file (or what it
// names) is bad input.
func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("test", "test [-v] DIR|FILE...", stderr)
	verbose := fs.Bool("v", false, "print passing expectations too")
	roots, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(roots) == 0 {
		fmt.Fprintln(stderr, "imagegate test: no DIR given (a directory holding imagegate-test.yaml files, or such a file)")
		return exitBadUsage
	}
	var files []string
	for _, root := range roots {
		fs, err := check.FindTestFiles(root)
		if err != nil {
			fmt.Fprintf(stderr, "imagegate test: %v\n", err)
			return exitBadUsage
		}
		if len(fs) == 0 {
			fmt.Fprintf(stderr, "imagegate test: %s: no imagegate-test.yaml under it\n", root)
			return exitBadUsage
		}
		files = append(files, fs...)
	}
	var tests, passed, failed, bad int
	for _, file := range files {
		ts, err := check.LoadTests(file)
		if err != nil {
			fmt.Fprintf(stdout, "ERROR %s\n%s\n", file, indent(err.Error()))
			bad++
			continue
		}
		for _, t := range ts {
			tests++
			outs, warnings, err := t.Run(ctx)
			name := fmt.Sprintf("%s:%d %s", t.File, t.Line, t.Metadata.Name)
			if err != nil {
				fmt.Fprintf(stdout, "ERROR %s\n%s\n", name, indent(err.Error()))
				bad++
				continue
			}
			fmt.Fprintf(stdout, "TEST %s\n", name)
			for _, w := range warnings {
				fmt.Fprintf(stdout, "  warning: %s\n", w)
			}
			for _, o := range outs {
				if o.Pass {
					passed++
					if *verbose {
						fmt.Fprintf(stdout, "  PASS %s %s = %s\n", o.Resource, o.What, o.Got)
					}
					continue
				}
				failed++
				fmt.Fprintf(stdout, "  FAIL %s %s (%s:%d)\n    - want %s\n    + got  %s\n", o.Resource, o.What, t.File, o.Line, o.Want, o.Got)
			}
		}
	}
	fmt.Fprintf(stdout, "%s, %s: %d passed, %d failed", plural(tests, "test"), plural(passed+failed, "expectation"), passed, failed)
	if bad > 0 {
		fmt.Fprintf(stdout, "; %d with bad input", bad)
	}
	fmt.Fprintln(stdout)
	switch {
	case bad > 0:
		return exitBadUsage
	case failed > 0:
		return exitDenied
	}
	return exitOK
}

func indent(s string) string {
	out := "  "
	for _, r := range s {
		out += string(r)
		if r == '\n' {
			out += "  "
		}
	}
	return out
}
