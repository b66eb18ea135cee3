package workload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DecodeManifest reads every workload of a YAML or JSON manifest: objects of
// the kinds in Kinds, Lists of them, and AdmissionReviews (whose request
// names the namespace and kind). Other kinds are skipped; a manifest with no
// workload at all is an error. file names the manifest in errors.
func DecodeManifest(file string, data []byte) ([]*Object, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*Object
	var skipped []string
	for doc := 1; ; doc++ {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: malformed YAML/JSON: %s", file, doc, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if v == nil {
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", file, doc, err)
		}
		objs, kinds, err := decodeAny(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", file, doc, err)
		}
		out = append(out, objs...)
		skipped = append(skipped, kinds...)
	}
	if len(out) == 0 {
		what := "it is empty"
		if len(skipped) > 0 {
			what = "it has only " + strings.Join(skipped, ", ")
		}
		return nil, fmt.Errorf("%s: no workload to check (expected one of %s; %s)", file, strings.Join(Kinds, ", "), what)
	}
	return out, nil
}

func decodeAny(raw []byte) (objs []*Object, skipped []string, err error) {
	var head struct {
		Kind    string            `json:"kind"`
		Items   []json.RawMessage `json:"items"`
		Request *struct {
			Namespace string                `json:"namespace"`
			Kind      struct{ Kind string } `json:"kind"`
			Object    json.RawMessage       `json:"object"`
		} `json:"request"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, nil, fmt.Errorf("expected a Kubernetes object: %v", err)
	}
	switch {
	case head.Kind == "":
		return nil, nil, errors.New("kind: is required")
	case head.Kind == "AdmissionReview":
		r := head.Request
		if r == nil || len(r.Object) == 0 || string(r.Object) == "null" {
			return nil, nil, errors.New("request.object: an AdmissionReview to check needs request.object")
		}
		if !IsWorkload(r.Kind.Kind) {
			return nil, []string{r.Kind.Kind}, nil
		}
		obj, err := DecodeAs(r.Kind.Kind, r.Object)
		if err != nil {
			return nil, nil, fmt.Errorf("request.object: %v", err)
		}
		if r.Namespace != "" {
			obj.Namespace = r.Namespace
		}
		return []*Object{obj}, nil, nil
	case strings.HasSuffix(head.Kind, "List"):
		for i, item := range head.Items {
			o, s, err := decodeAny(item)
			if err != nil {
				return nil, nil, fmt.Errorf("items[%d]: %v", i, err)
			}
			objs, skipped = append(objs, o...), append(skipped, s...)
		}
		return objs, skipped, nil
	case !IsWorkload(head.Kind):
		return nil, []string{head.Kind}, nil
	}
	obj, err := Decode(raw)
	if err != nil {
		return nil, nil, err
	}
	return []*Object{obj}, nil, nil
}
