// Package strictyaml checks a YAML tree against the Go type it will be
// decoded into, before it is decoded: every unknown field, and every value of
// the wrong shape, with its line and field path. encoding/json's
// DisallowUnknownFields stops at the first problem and knows no lines; a
// user fixing a manifest wants both.
package strictyaml

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem with one field of one file.
type FieldError struct {
	File string `json:"file"`
	Line int    `json:"line,omitempty"`  // 1-based; 0 when unknown
	Path string `json:"field,omitempty"` // e.g. spec.template.spec.containers[0].imagePullPolicy
	Msg  string `json:"message"`
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Options tune a check.
type Options struct {
	// Scalars also checks that strings, booleans and numbers are what the
	// field holds. Off for Kubernetes manifests: kubectl reads YAML 1.1,
	// where `yes` is a boolean, and the API server has the last word on
	// values anyway.
	Scalars bool
	// Field, when set, is asked first about every field of every object:
	// handled false leaves the field to the usual check. It may rewrite val
	// in place (a word to the number the field holds) or accept a field the
	// type lacks (status read back from a cluster); a non-empty msg is a
	// problem with the field.
	Field func(parent reflect.Type, key, path string, val *yaml.Node) (msg string, handled bool)
}

// Result is what a check found.
type Result struct {
	Errors []*FieldError // File is left empty for the caller to set
	Lines  map[string]int
}

// Check walks n against t. path prefixes every field path (e.g.
// "request.object" for an AdmissionReview's object).
func Check(n *yaml.Node, t reflect.Type, path string, opts Options) Result {
	w := &walker{opts: opts, lines: map[string]int{}}
	w.check(n, t, path)
	return Result{Errors: w.errs, Lines: w.lines}
}

// Decode decodes n (already checked) into v through JSON, so that the
// types' json tags and UnmarshalJSON methods apply as they do elsewhere.
func Decode(n *yaml.Node, v any) error {
	var generic any
	if err := n.Decode(&generic); err != nil {
		return err
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return err
	}
	return json.Unmarshal(js, v)
}

type walker struct {
	opts  Options
	errs  []*FieldError
	lines map[string]int
}

var unmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

func (w *walker) errorf(line int, path, format string, args ...any) {
	w.errs = append(w.errs, &FieldError{Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (w *walker) check(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	w.lines[path] = n.Line
	if isNull(n) {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// A type that decodes itself (times, quantities, int-or-string, raw
	// extensions) accepts what its own decoder accepts.
	if reflect.PointerTo(t).Implements(unmarshaler) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		w.checkStruct(n, t, path)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 { // []byte: base64 text
			w.scalar(n, path, "!!str", "a string")
			return
		}
		if n.Kind != yaml.SequenceNode {
			w.errorf(n.Line, path, "expected a list, got %s", Describe(n))
			return
		}
		for i, c := range n.Content {
			w.check(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.errorf(n.Line, path, "expected an object, got %s", Describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.check(n.Content[i+1], t.Elem(), fmt.Sprintf("%s[%s]", path, n.Content[i].Value))
		}
	case reflect.String:
		w.scalar(n, path, "!!str", "a string")
	case reflect.Bool:
		w.scalar(n, path, "!!bool", "true or false")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		w.scalar(n, path, "!!int", "an integer")
	case reflect.Float32, reflect.Float64:
		w.scalar(n, path, "!!float", "a number", "!!int")
	}
}

func (w *walker) scalar(n *yaml.Node, path, tag, want string, alsoTags ...string) {
	if n.Kind != yaml.ScalarNode {
		w.errorf(n.Line, path, "expected %s, got %s", want, Describe(n))
		return
	}
	if !w.opts.Scalars || n.Tag == tag {
		return
	}
	for _, t := range alsoTags {
		if n.Tag == t {
			return
		}
	}
	hint := ""
	if tag == "!!str" {
		hint = fmt.Sprintf(" (quote it: %q)", n.Value)
	}
	w.errorf(n.Line, path, "expected %s, got %s%s", want, Describe(n), hint)
}

func (w *walker) checkStruct(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.errorf(n.Line, path, "expected an object, got %s", Describe(n))
		return
	}
	fields := structFields(t)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		p := Join(path, key.Value)
		if seen[key.Value] {
			w.errorf(key.Line, p, "duplicate field")
			continue
		}
		seen[key.Value] = true
		if w.opts.Field != nil {
			if msg, handled := w.opts.Field(t, key.Value, p, val); handled {
				w.lines[p] = lineOf(val)
				if msg != "" {
					w.errorf(lineOf(val), p, "%s", msg)
				}
				continue
			}
		}
		ft, ok := fields[key.Value]
		if !ok {
			w.lines[p] = key.Line
			w.errorf(key.Line, p, "unknown field%s", expected(key.Value, fields))
			continue
		}
		w.check(val, ft, p)
	}
}

func lineOf(n *yaml.Node) int {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias.Line
	}
	return n.Line
}

// expected says what the field could have been: the close spelling when
// there is one, else every field when there are few (a PodSpec has dozens).
func expected(got string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", 3
	for _, k := range names {
		if d := distance(strings.ToLower(got), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	switch {
	case best != "":
		return fmt.Sprintf(" (did you mean %q?)", best)
	case len(names) <= 12:
		return ", expected one of " + strings.Join(names, ", ")
	}
	return ""
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// structFields maps JSON names to field types, flattening inline and
// embedded structs (Kubernetes' TypeMeta is `json:",inline"`).
func structFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if strings.Contains(opts, "inline") || (f.Anonymous && name == "") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range structFields(ft) {
				m[k] = v
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

// MapValue returns the value of key in a mapping node, or nil.
func MapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// IsNull reports whether n is an explicit or implied null.
func IsNull(n *yaml.Node) bool { return n == nil || isNull(n) }

// Describe names what a YAML node is, for error messages.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int":
		return "the integer " + n.Value
	case "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	}
	return fmt.Sprintf("%q", n.Value)
}

// Join appends a field to a dotted field path.
func Join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}
