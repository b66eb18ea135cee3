package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/imagegate/imagegate/check"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// checkOutput writes check's results, warnings and errors, as text or as
// one JSON document on stdout: a CI job parsing stdout gets JSON even for
// bad input.
type checkOutput struct {
	json           bool
	stdout, stderr io.Writer
	warnings       []string
}

// warn records a warning and says it on stderr at once, where a person
// running check sees it beside the results.
func (o *checkOutput) warn(w string) {
	o.warnings = append(o.warnings, w)
	fmt.Fprintf(o.stderr, "imagegate check: warning: %s\n", w)
}

// inputError is bad input as -o json reports it.
type inputError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field,omitempty"`
	Object  string `json:"object,omitempty"` // policy errors: "Kind name"
	Message string `json:"message"`
}

// bad reports bad input and returns exit 2.
func (o *checkOutput) bad(err error) int {
	fmt.Fprintf(o.stderr, "imagegate check: %v\n", err)
	if o.json {
		all := inputErrors(err)
		doc := map[string]any{"error": all[0], "results": []check.Result{}, "warnings": nonNil(o.warnings)}
		if len(all) > 1 {
			doc["errors"] = all
		}
		o.encode(doc)
	}
	return exitBadUsage
}

// inputErrors breaks err into the errors it holds, each with file, line
// and field when known.
func inputErrors(err error) []inputError {
	var pes policy.Errors
	var wes workload.FieldErrors
	var pe *policy.FieldError
	var fe *workload.FieldError
	switch {
	case errors.As(err, &pes):
		out := make([]inputError, len(pes))
		for i, e := range pes {
			out[i] = fromPolicy(e)
		}
		return out
	case errors.As(err, &wes):
		out := make([]inputError, len(wes))
		for i, e := range wes {
			out[i] = inputError{File: e.File, Line: e.Line, Field: e.Path, Message: e.Msg}
		}
		return out
	case errors.As(err, &pe):
		return []inputError{fromPolicy(pe)}
	case errors.As(err, &fe):
		return []inputError{{File: fe.File, Line: fe.Line, Field: fe.Path, Message: fe.Msg}}
	}
	return []inputError{{Message: err.Error()}}
}

func fromPolicy(e *policy.FieldError) inputError {
	obj := strings.TrimSpace(e.Kind + " " + e.Name)
	return inputError{File: e.File, Line: e.Line, Field: e.Path, Object: obj, Message: e.Msg}
}

func (o *checkOutput) results(rs []check.Result) {
	sum := check.Summarize(rs)
	if o.json {
		o.encode(map[string]any{"results": rs, "warnings": nonNil(o.warnings), "summary": sum})
		return
	}
	for _, r := range rs {
		verdict := "ALLOWED"
		if !r.Allowed {
			verdict = "DENIED"
		}
		fmt.Fprintf(o.stdout, "%s %s %s/%s (%s)\n", verdict, r.Kind, r.Namespace, r.Name, where(r.File, r.Line))
		for _, img := range r.Images {
			fmt.Fprintf(o.stdout, "  %-8s %s%s\n", img.Shown(), img.Image, digestNote(img))
			for _, reason := range img.Reasons {
				fmt.Fprintf(o.stdout, "           %s\n", strings.TrimSpace(reason))
			}
			if len(img.CouldNotVerify) > 0 {
				fmt.Fprintf(o.stdout, "           could not verify %s: its signatures could not be checked (not found missing); retry, or fix access to the registry\n", strings.Join(img.CouldNotVerify, ", "))
			}
		}
	}
	fmt.Fprintln(o.stdout, summaryLine(sum, len(o.warnings)))
}

// summaryLine is text output's last line, e.g.
// "3 resources: 1 allowed, 2 denied; images: 3 pass, 1 block, 1 unsigned; 1 warning".
func summaryLine(s check.Summary, warnings int) string {
	var parts []string
	for _, a := range []string{"pass", "alert", "allow", "block", "unsigned"} {
		n := s.Actions[a]
		if a == "unsigned" {
			n -= s.CouldNotVerify
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, a))
		}
	}
	if s.CouldNotVerify > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", s.CouldNotVerify, check.Unverifiable))
	}
	line := fmt.Sprintf("%s: %d allowed, %d denied", plural(s.Resources, "resource"), s.Allowed, s.Denied)
	if len(parts) > 0 {
		line += "; images: " + strings.Join(parts, ", ")
	}
	if warnings > 0 {
		line += "; " + plural(warnings, "warning")
	}
	return line
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func where(file string, line int) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d", file, line)
	}
	return file
}

// digestNote is what text output says of an image's digest: what its tag
// resolved to, or why it did not.
func digestNote(img check.Image) string {
	switch {
	case img.DigestError != "":
		return " (digest not resolved: " + img.DigestError + ")"
	case img.Digest != "" && !strings.HasSuffix(img.Image, img.Digest):
		return " (" + img.Digest + ")"
	}
	return ""
}

func (o *checkOutput) encode(v any) {
	enc := json.NewEncoder(o.stdout)
	enc.SetEscapeHTML(false) // <stdin> stays readable
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}
