package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
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
	var errs Errors
	errorf := func(line int, path, format string, args ...any) {
		errs = append(errs, &FieldError{File: file, Line: line, Kind: kind, Name: name, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if apiNode == nil || apiNode.Value != APIVersion {
		line, got := n.Line, "nothing"
		if apiNode != nil {
			line, got = apiNode.Line, fmt.Sprintf("%q", apiNode.Value)
		}
		errorf(line, "apiVersion", "expected %q, got %s", APIVersion, got)
	}
	res := strictyaml.Check(n, typ, "", strictyaml.Options{Scalars: true, Field: policyField})
	for _, e := range res.Errors {
		errorf(e.Line, e.Path, "%s", e.Msg)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	obj := reflect.New(typ).Interface().(Object)
	if err := strictyaml.Decode(n, obj); err != nil {
		return fail(n.Line, "", err.Error())
	}
	return &decoded{obj: obj, src: source{file: file, line: n.Line, lines: res.Lines}}, nil
}

// policyField is what policy objects accept beyond their Go types: the
// words of the numeric fields, and what Kubernetes adds to an object read
// back from a cluster (status, server-set metadata), accepted and ignored.
func policyField(parent reflect.Type, key, path string, val *yaml.Node) (string, bool) {
	if wf, ok := wordFields[parent.Name()+"."+key]; ok {
		return wf.rewrite(val), true
	}
	if (path == "status") || (path == "metadata."+key && ignoredMeta[key]) {
		return "", true
	}
	return "", false
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
