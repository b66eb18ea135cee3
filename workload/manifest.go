package workload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/imagegate/imagegate/internal/strictyaml"
	"go.yaml.in/yaml/v3"
)

// FieldError is a problem with one field of a manifest: file, line, field
// path and what is wrong.
type FieldError = strictyaml.FieldError

// DecodeManifest reads every workload of a YAML or JSON manifest: objects of
// the kinds in Kinds, Lists of them, and AdmissionReviews (whose request
// names the namespace and kind). Other kinds are skipped; a manifest with no
// workload at all is an error. file names the manifest in errors.
//
// Decoding is strict, unlike Decode and DecodeAs: a field that the
// Kubernetes type of a workload does not have is an error (*FieldError,
// with line and path). A manifest given to imagegate check is written by
// someone who wants to know that `containerz:` is a typo, not have it
// decoded to a pod without images and allowed. The webhook stays lenient:
// an API server newer than imagegate may send fields it does not know.
func DecodeManifest(file string, data []byte) ([]*Object, error) {
	located, err := decodeManifest(file, data, false)
	if err != nil {
		return nil, err
	}
	objs := make([]*Object, len(located))
	for i, l := range located {
		objs[i] = l.Object
	}
	return objs, nil
}

// Located is a workload with where it was written.
type Located struct {
	*Object
	File string
	Line int // line of the object (a List item's, an AdmissionReview's object's)
}

// decodeManifest is DecodeManifest keeping where each object was written.
// A file found in a directory may hold no workload (a Service, a
// ConfigMap); a file named on its own may not.
func decodeManifest(file string, data []byte, inDir bool) ([]Located, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Located
	var skipped []string
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &FieldError{File: file, Line: yamlErrorLine(err),
				Msg: fmt.Sprintf("document %d: malformed YAML/JSON: %s", doc, strings.TrimPrefix(err.Error(), "yaml: "))}
		}
		if len(n.Content) == 0 || strictyaml.IsNull(n.Content[0]) {
			continue
		}
		d := &manifestDoc{file: file}
		objs, kinds, err := d.decodeAny(n.Content[0], "")
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
		skipped = append(skipped, kinds...)
	}
	if len(out) == 0 && !inDir {
		what := "it is empty"
		if len(skipped) > 0 {
			what = "it has only " + strings.Join(skipped, ", ")
		}
		return nil, &FieldError{File: file, Msg: fmt.Sprintf("no workload to check (expected one of %s; %s)", strings.Join(Kinds, ", "), what)}
	}
	return out, nil
}

type manifestDoc struct{ file string }

func (d *manifestDoc) fail(n *yaml.Node, path, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &FieldError{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)}
}

func (d *manifestDoc) decodeAny(n *yaml.Node, path string) (objs []Located, skipped []string, err error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil, nil, d.fail(n, path, "expected a Kubernetes object, got %s", kindOfNode(n))
	}
	kindNode := strictyaml.MapValue(n, "kind")
	kind := ""
	if kindNode != nil {
		kind = kindNode.Value
	}
	switch {
	case kind == "":
		return nil, nil, d.fail(n, join(path, "kind"), "is required")
	case kind == "AdmissionReview":
		return d.review(n, path)
	case strings.HasSuffix(kind, "List"):
		items := strictyaml.MapValue(n, "items")
		if strictyaml.IsNull(items) {
			return nil, nil, nil
		}
		if items.Kind != yaml.SequenceNode {
			return nil, nil, d.fail(items, join(path, "items"), "expected a list, got %s", kindOfNode(items))
		}
		for i, item := range items.Content {
			o, s, err := d.decodeAny(item, fmt.Sprintf("%s[%d]", join(path, "items"), i))
			if err != nil {
				return nil, nil, err
			}
			objs, skipped = append(objs, o...), append(skipped, s...)
		}
		return objs, skipped, nil
	case !IsWorkload(kind):
		return nil, []string{kind}, nil
	}
	obj, err := d.object(kind, n, path)
	if err != nil {
		return nil, nil, err
	}
	return []Located{{Object: obj, File: d.file, Line: n.Line}}, nil, nil
}

// review decodes an AdmissionReview's object as the kind its request names.
// The envelope is not checked field by field: it is written by an API
// server, not by hand. The object is.
func (d *manifestDoc) review(n *yaml.Node, path string) ([]Located, []string, error) {
	req := strictyaml.MapValue(n, "request")
	obj := strictyaml.MapValue(req, "object")
	if strictyaml.IsNull(obj) {
		return nil, nil, d.fail(n, join(path, "request.object"), "an AdmissionReview to check needs request.object")
	}
	kind := ""
	if k := strictyaml.MapValue(strictyaml.MapValue(req, "kind"), "kind"); k != nil {
		kind = k.Value
	}
	if !IsWorkload(kind) {
		return nil, []string{kind}, nil
	}
	o, err := d.object(kind, obj, join(path, "request.object"))
	if err != nil {
		return nil, nil, err
	}
	if ns := strictyaml.MapValue(req, "namespace"); ns != nil && ns.Value != "" {
		o.Namespace = ns.Value
	}
	return []Located{{Object: o, File: d.file, Line: obj.Line}}, nil, nil
}

// object checks n strictly against kind's Kubernetes type, then reduces it
// as the webhook does.
func (d *manifestDoc) object(kind string, n *yaml.Node, path string) (*Object, error) {
	if k := strictyaml.MapValue(n, "kind"); k != nil && k.Value != kind {
		return nil, d.fail(k, join(path, "kind"), "object is a %s, but the request is for a %s", k.Value, kind)
	}
	res := strictyaml.Check(n, kubeTypes[kind], path, strictyaml.Options{})
	if len(res.Errors) > 0 {
		for _, e := range res.Errors {
			e.File = d.file
		}
		if len(res.Errors) == 1 {
			return nil, res.Errors[0]
		}
		return nil, FieldErrors(res.Errors)
	}
	var raw any
	if err := n.Decode(&raw); err != nil {
		return nil, d.fail(n, path, "%v", err)
	}
	js, err := json.Marshal(raw)
	if err != nil {
		return nil, d.fail(n, path, "%v", err)
	}
	obj, err := DecodeAs(kind, js)
	if err != nil {
		line := n.Line
		if l, ok := res.Lines[join(path, "spec")]; ok {
			line = l
		}
		return nil, &FieldError{File: d.file, Line: line, Path: path, Msg: err.Error()}
	}
	return obj, nil
}

// FieldErrors is every unknown or misshapen field of one object.
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func kindOfNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "an object"
}

// yamlErrorLine finds "line N" in a YAML parser error (0: none).
func yamlErrorLine(err error) int {
	var line int
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		fmt.Sscanf(msg[i:], "line %d", &line)
	}
	return line
}
