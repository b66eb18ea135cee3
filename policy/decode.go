package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"github.com/imagegate/imagegate/internal/strictyaml"
	"go.yaml.in/yaml/v3"
)

// Object is any of the three policy kinds.
type Object interface {
	kind() string
	name() string
}

func (a *Attestor) kind() string             { return KindAttestor }
func (a *Attestor) name() string             { return a.Metadata.Name }
func (p *BinarySecurityPolicy) kind() string { return KindBinarySecurityPolicy }
func (p *BinarySecurityPolicy) name() string { return p.Metadata.Name }
func (s *OpaStrategy) kind() string          { return KindOpaStrategy }
func (s *OpaStrategy) name() string          { return s.Metadata.Name }

var kindTypes = map[string]reflect.Type{
	KindAttestor:             reflect.TypeOf(Attestor{}),
	KindBinarySecurityPolicy: reflect.TypeOf(BinarySecurityPolicy{}),
	KindOpaStrategy:          reflect.TypeOf(OpaStrategy{}),
}

// metadata fields that Kubernetes adds to objects read back from a cluster;
// accepted and ignored so `kubectl get -o yaml` output loads.
var ignoredMeta = map[string]bool{
	"uid": true, "resourceVersion": true, "generation": true, "creationTimestamp": true,
	"managedFields": true, "finalizers": true, "selfLink": true, "deletionTimestamp": true,
	"deletionGracePeriodSeconds": true, "ownerReferences": true, "generateName": true,
}

// source locates a decoded object for error messages and for the later
// cross-object checks.
type source struct {
	file  string
	line  int
	lines map[string]int // field path -> line
}

type decoded struct {
	obj Object
	src source
}

// Parse decodes every document of one YAML or JSON file. file names the data
// in errors. Objects are checked field by field; cross-object rules (unique
// ids, known attestors) are checked by NewSnapshot.
func Parse(file string, data []byte) ([]Object, error) {
	ds, errs := parse(file, data)
	if err := errs.err(); err != nil {
		return nil, err
	}
	objs := make([]Object, len(ds))
	for i, d := range ds {
		objs[i] = d.obj
	}
	return objs, nil
}

func parse(file string, data []byte) ([]decoded, Errors) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []decoded
	var errs Errors
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &FieldError{File: file, Msg: "malformed YAML/JSON: " + strings.TrimPrefix(err.Error(), "yaml: ")})
			break
		}
		if len(doc.Content) == 0 || strictyaml.IsNull(doc.Content[0]) {
			continue // empty document, e.g. a trailing ---
		}
		d, es := decodeDoc(file, doc.Content[0])
		errs = append(errs, es...)
		if d != nil {
			out = append(out, *d)
		}
	}
	return out, errs
}

func decodeDoc(file string, n *yaml.Node) (*decoded, Errors) {
	fail := func(line int, path, msg string) (*decoded, Errors) {
		return nil, Errors{{File: file, Line: line, Path: path, Msg: msg}}
	}
	if n.Kind != yaml.MappingNode {
		return fail(n.Line, "", "expected an object with apiVersion, kind, metadata and spec, got "+strictyaml.Describe(n))
	}
	kindNode, apiNode := mapValue(n, "kind"), mapValue(n, "apiVersion")
	if kindNode == nil || kindNode.Value == "" {
		return fail(n.Line, "kind", "is required (one of Attestor, BinarySecurityPolicy, OpaStrategy)")
	}
	kind := kindNode.Value
	typ, ok := kindTypes[kind]
	if !ok {
		return fail(kindNode.Line, "kind", fmt.Sprintf("unknown kind %q, expected one of Attestor, BinarySecurityPolicy, OpaStrategy", kind))
	}
	name := ""
	if md := mapValue(n, "metadata"); md != nil {
		if nm := mapValue(md, "name"); nm != nil {
			name = nm.Value
		}
	}
	w := &walker{file: file, kind: kind, name: name, lines: map[string]int{}}
	if apiNode == nil || apiNode.Value != APIVersion {
		line, got := n.Line, "nothing"
		if apiNode != nil {
			line, got = apiNode.Line, fmt.Sprintf("%q", apiNode.Value)
		}
		w.errorf(line, "apiVersion", "expected %q, got %s", APIVersion, got)
	}
	w.check(n, typ, "")
	if len(w.errs) > 0 {
		return nil, w.errs
	}
	var generic any
	if err := n.Decode(&generic); err != nil {
		return fail(n.Line, "", err.Error())
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return fail(n.Line, "", err.Error())
	}
	obj := reflect.New(typ).Interface().(Object)
	if err := json.Unmarshal(js, obj); err != nil {
		return fail(n.Line, "", err.Error())
	}
	return &decoded{obj: obj, src: source{file: file, line: n.Line, lines: w.lines}}, nil
}

// walker checks a YAML tree against a Go type: unknown fields and wrong types,
// each with its path and line.
type walker struct {
	file, kind, name string
	errs             Errors
	lines            map[string]int
}

func (w *walker) errorf(line int, path, format string, args ...any) {
	w.errs = append(w.errs, &FieldError{File: w.file, Line: line, Kind: w.kind, Name: w.name, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (w *walker) check(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	w.lines[path] = n.Line
	if strictyaml.IsNull(n) {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		w.checkStruct(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.errorf(n.Line, path, "expected a list, got %s", strictyaml.Describe(n))
			return
		}
		for i, c := range n.Content {
			w.check(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.errorf(n.Line, path, "expected an object, got %s", strictyaml.Describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.check(n.Content[i+1], t.Elem(), strictyaml.Join(path, n.Content[i].Value))
		}
	case reflect.String:
		w.scalar(n, path, "!!str", "a string")
	case reflect.Bool:
		w.scalar(n, path, "!!bool", "true or false")
	case reflect.Int, reflect.Int64:
		w.scalar(n, path, "!!int", "an integer")
	}
}

func (w *walker) scalar(n *yaml.Node, path, tag, want string) {
	if n.Kind == yaml.ScalarNode && n.Tag == tag {
		return
	}
	hint := ""
	if tag == "!!str" && n.Kind == yaml.ScalarNode {
		hint = fmt.Sprintf(" (quote it: %q)", n.Value)
	}
	w.errorf(n.Line, path, "expected %s, got %s%s", want, strictyaml.Describe(n), hint)
}

func (w *walker) checkStruct(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.errorf(n.Line, path, "expected an object, got %s", strictyaml.Describe(n))
		return
	}
	fields := structFields(t)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		p := strictyaml.Join(path, key.Value)
		if seen[key.Value] {
			w.errorf(key.Line, p, "duplicate field")
			continue
		}
		seen[key.Value] = true
		if wf, ok := wordFields[t.Name()+"."+key.Value]; ok {
			w.word(val, p, wf)
			continue
		}
		ft, ok := fields[key.Value]
		if !ok {
			if (path == "" && key.Value == "status") || (path == "metadata" && ignoredMeta[key.Value]) {
				continue
			}
			w.errorf(key.Line, p, "unknown field, expected one of %s", strings.Join(sortedKeys(fields), ", "))
			continue
		}
		w.check(val, ft, p)
	}
}

// structFields maps JSON names to field types, flattening inline structs.
func structFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if strings.Contains(opts, "inline") || (f.Anonymous && name == "") {
			for k, v := range structFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		m[name] = f.Type
	}
	return m
}

func sortedKeys(m map[string]reflect.Type) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
