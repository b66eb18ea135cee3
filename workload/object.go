package workload

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Kinds whose pods imagegate decides on.
var Kinds = []string{"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"}

// DefaultNamespace is the namespace of an object that names none.
const DefaultNamespace = "default"

// Object is a workload reduced to what admission decides on.
type Object struct {
	Kind      string
	Namespace string
	Name      string
	Labels    map[string]string // the pod's labels (a controller's pod template's)
	Images    []Image
	// ServiceAccount is the pod's serviceAccountName ("" when unset: the
	// namespace's default service account).
	ServiceAccount string
	// PullSecrets names the Secrets of the pod's imagePullSecrets, in order.
	PullSecrets []string
}

type meta struct {
	Name         string            `json:"name"`
	GenerateName string            `json:"generateName"`
	Namespace    string            `json:"namespace"`
	Labels       map[string]string `json:"labels"`
}

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

type localRef struct {
	Name string `json:"name"`
}

type podSpec struct {
	ServiceAccountName  string      `json:"serviceAccountName"`
	ImagePullSecrets    []localRef  `json:"imagePullSecrets"`
	Containers          []container `json:"containers"`
	InitContainers      []container `json:"initContainers"`
	EphemeralContainers []container `json:"ephemeralContainers"`
}

type podTemplate struct {
	Metadata meta    `json:"metadata"`
	Spec     podSpec `json:"spec"`
}

type object struct {
	Kind     string          `json:"kind"`
	Metadata meta            `json:"metadata"`
	Spec     json.RawMessage `json:"spec"`
}

// IsWorkload reports whether kind is one of Kinds.
func IsWorkload(kind string) bool {
	for _, k := range Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// Decode reduces one JSON object of a workload kind. The namespace defaults to
// DefaultNamespace.
func Decode(raw []byte) (*Object, error) {
	var o object
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, fmt.Errorf("decoding object: %w", err)
	}
	return decode(o.Kind, o.Metadata, o.Spec)
}

// DecodeAs reduces raw as an object of the given kind, whatever raw says its
// kind is (admission requests name the kind separately).
func DecodeAs(kind string, raw []byte) (*Object, error) {
	if obj, ok := scanAs(kind, raw); ok {
		return obj, nil
	}
	return decodeAs(kind, raw)
}

// decodeAs is DecodeAs with encoding/json: the reference scanAs must agree
// with, and what words its errors.
func decodeAs(kind string, raw []byte) (*Object, error) {
	var o object
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", kind, err)
	}
	if o.Kind != "" && o.Kind != kind {
		return nil, fmt.Errorf("object is a %s, but the request is for a %s", o.Kind, kind)
	}
	return decode(kind, o.Metadata, o.Spec)
}

func decode(kind string, m meta, spec json.RawMessage) (*Object, error) {
	if !IsWorkload(kind) {
		return nil, fmt.Errorf("kind %q is not a workload (expected one of %v)", kind, Kinds)
	}
	tmpl, err := template(kind, m, spec)
	if err != nil {
		return nil, err
	}
	return build(kind, m, tmpl), nil
}

// build is the Object of an object of kind with metadata m whose pod
// (template) is tmpl.
func build(kind string, m meta, tmpl podTemplate) *Object {
	obj := &Object{Kind: kind, Namespace: m.Namespace, Name: m.Name}
	if obj.Name == "" {
		obj.Name = m.GenerateName
	}
	if obj.Namespace == "" {
		obj.Namespace = DefaultNamespace
	}
	obj.Labels = tmpl.Metadata.Labels
	obj.Images = images(tmpl.Spec)
	obj.ServiceAccount = tmpl.Spec.ServiceAccountName
	for _, r := range tmpl.Spec.ImagePullSecrets {
		// An entry without a name is ignored, as the kubelet ignores it.
		if r.Name != "" {
			obj.PullSecrets = append(obj.PullSecrets, r.Name)
		}
	}
	return obj
}

// template finds the pod (template) inside an object of kind.
func template(kind string, m meta, spec json.RawMessage) (podTemplate, error) {
	var t podTemplate
	if len(spec) == 0 || string(spec) == "null" {
		return t, fmt.Errorf("%s has no spec", kind)
	}
	var err error
	switch kind {
	case "Pod":
		t.Metadata = m
		err = json.Unmarshal(spec, &t.Spec)
	case "CronJob":
		var cj struct {
			JobTemplate struct {
				Spec struct {
					Template podTemplate `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		}
		err = json.Unmarshal(spec, &cj)
		t = cj.JobTemplate.Spec.Template
	default:
		var c struct {
			Template podTemplate `json:"template"`
		}
		err = json.Unmarshal(spec, &c)
		t = c.Template
	}
	if err != nil {
		return t, fmt.Errorf("decoding %s spec: %w", kind, err)
	}
	return t, nil
}

func images(s podSpec) []Image {
	out := make([]Image, 0, len(s.Containers)+len(s.InitContainers)+len(s.EphemeralContainers))
	// A pod has a few images: they are compared directly, and only a pod
	// with many is given a set (so a huge one costs no quadratic time).
	var seen map[string]bool
	add := func(cs []container, source string) {
		for _, c := range cs {
			// One decision per distinct image: a second container with the
			// same image adds no work and no duplicate line.
			if seen == nil && len(out) >= 16 {
				seen = make(map[string]bool, cap(out))
				for _, img := range out {
					seen[img.Ref] = true
				}
			}
			if seen != nil && seen[c.Image] || seen == nil && slices.ContainsFunc(out, func(img Image) bool { return img.Ref == c.Image }) {
				continue
			}
			if seen != nil {
				seen[c.Image] = true
			}
			img := parseCached(c.Image)
			img.Container, img.Source = c.Name, source
			out = append(out, img)
		}
	}
	add(s.Containers, Container)
	add(s.InitContainers, InitContainer)
	add(s.EphemeralContainers, EphemeralContainer)
	return out
}
