package workload_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/workload"
)

func TestParseImage(t *testing.T) {
	cases := []struct {
		ref, canonical, tag, digest string
		names                       []string
	}{
		{"nginx", "index.docker.io/library/nginx:latest", "latest", "", []string{"nginx", "library/nginx", "index.docker.io/library/nginx", "docker.io/library/nginx"}},
		{"registry.example.com/team/app:1.0", "registry.example.com/team/app:1.0", "1.0", "", []string{"app", "team/app", "registry.example.com/team/app"}},
		{"localhost:5000/app@sha256:" + strings.Repeat("a", 64), "localhost:5000/app@sha256:" + strings.Repeat("a", 64), "", "sha256:" + strings.Repeat("a", 64), []string{"app", "localhost:5000/app"}},
		{"reg.io/a/b:v2@sha256:" + strings.Repeat("b", 64), "reg.io/a/b@sha256:" + strings.Repeat("b", 64), "v2", "sha256:" + strings.Repeat("b", 64), []string{"b", "a/b", "reg.io/a/b"}},
	}
	for _, c := range cases {
		img := workload.ParseImage(c.ref)
		if img.Err != nil {
			t.Fatalf("%s: %v", c.ref, img.Err)
		}
		if img.Canonical != c.canonical || img.Tag != c.tag || img.Digest != c.digest {
			t.Errorf("%s: got canonical %q tag %q digest %q", c.ref, img.Canonical, img.Tag, img.Digest)
		}
		for _, n := range c.names {
			if !slices.Contains(img.Names, n) {
				t.Errorf("%s: names %q lack %q", c.ref, img.Names, n)
			}
		}
	}
	for _, bad := range []string{"", "UPPER/case", "a b", "reg.io/app:tag:tag"} {
		if workload.ParseImage(bad).Err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

const podSpec = `{"serviceAccountName":"builder","imagePullSecrets":[{"name":"regcred"},{},{"name":"other"}],"containers":[{"name":"a","image":"app:1"},{"name":"dup","image":"app:1"}],"initContainers":[{"name":"i","image":"init:1"}],"ephemeralContainers":[{"name":"e","image":"debug:1"}]}`

func TestDecodeEveryKind(t *testing.T) {
	tmpl := `{"metadata":{"labels":{"app":"web"}},"spec":` + podSpec + `}`
	cases := map[string]string{
		"Pod":                   `{"kind":"Pod","metadata":{"name":"x","namespace":"ns","labels":{"app":"web"}},"spec":` + podSpec + `}`,
		"Deployment":            `{"kind":"Deployment","metadata":{"name":"x","namespace":"ns","labels":{"other":"1"}},"spec":{"template":` + tmpl + `}}`,
		"ReplicaSet":            `{"kind":"ReplicaSet","metadata":{"name":"x","namespace":"ns"},"spec":{"template":` + tmpl + `}}`,
		"StatefulSet":           `{"kind":"StatefulSet","metadata":{"name":"x","namespace":"ns"},"spec":{"template":` + tmpl + `}}`,
		"DaemonSet":             `{"kind":"DaemonSet","metadata":{"name":"x","namespace":"ns"},"spec":{"template":` + tmpl + `}}`,
		"Job":                   `{"kind":"Job","metadata":{"name":"x","namespace":"ns"},"spec":{"template":` + tmpl + `}}`,
		"ReplicationController": `{"kind":"ReplicationController","metadata":{"name":"x","namespace":"ns"},"spec":{"template":` + tmpl + `}}`,
		"CronJob":               `{"kind":"CronJob","metadata":{"name":"x","namespace":"ns"},"spec":{"jobTemplate":{"spec":{"template":` + tmpl + `}}}}`,
	}
	for kind, raw := range cases {
		t.Run(kind, func(t *testing.T) {
			o, err := workload.Decode([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			var refs, sources []string
			for _, img := range o.Images {
				refs, sources = append(refs, img.Ref), append(sources, img.Source)
			}
			if o.Kind != kind || o.Namespace != "ns" || o.Name != "x" || o.Labels["app"] != "web" || o.Labels["other"] != "" {
				t.Errorf("decoded %+v", o)
			}
			if !slices.Equal(refs, []string{"app:1", "init:1", "debug:1"}) || !slices.Equal(sources, []string{"container", "initContainer", "ephemeralContainer"}) {
				t.Errorf("images %q from %q", refs, sources)
			}
			if o.ServiceAccount != "builder" || !slices.Equal(o.PullSecrets, []string{"regcred", "other"}) {
				t.Errorf("service account %q, pull secrets %q; want builder, [regcred other]", o.ServiceAccount, o.PullSecrets)
			}
		})
	}
}

func TestDecodeManifest(t *testing.T) {
	manifest := `
apiVersion: v1
kind: Service
metadata: {name: s}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: [{name: c, image: nginx}]}}
---
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"namespace":"team","kind":{"kind":"Deployment"},"object":{"kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"redis"}]}}}}}}
`
	objs, err := workload.DecodeManifest("m.yaml", []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Name != "a" || objs[0].Namespace != "default" || objs[1].Namespace != "team" || objs[1].Kind != "Deployment" {
		t.Fatalf("objects %+v %+v", objs[0], objs[1])
	}
	for _, bad := range []struct{ doc, want string }{
		{"kind: Service\nmetadata: {name: s}\n", "m.yaml: no workload to check"},
		{"metadata: {name: s}\n", "m.yaml:1: kind: is required"},
		{"kind: Pod\nmetadata: {name: p}\n", "m.yaml:1: Pod has no spec"},
		{"kind: Pod\nspec: {containers: 3}\n", "m.yaml:2: spec.containers: expected a list, got the integer 3"},
		{`{"kind":"AdmissionReview","request":{"kind":{"kind":"Pod"},"object":{"kind":"Deployment","spec":{}}}}`, "object is a Deployment, but the request is for a Pod"},
	} {
		if _, err := workload.DecodeManifest("m.yaml", []byte(bad.doc)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want %q", bad.doc, err, bad.want)
		}
	}
}

// FuzzDecode: arbitrary bytes never panic the extraction, and whatever decodes
// has a namespace and parsed images.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"kind":"Pod","metadata":{"name":"x"},"spec":` + podSpec + `}`))
	f.Add([]byte(`{"kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[{"image":"a@sha256:00"}]}}}}}}`))
	f.Add([]byte(`{"kind":"Deployment","spec":{"template":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := workload.Decode(data)
		if err != nil {
			return
		}
		if o.Namespace == "" {
			t.Fatal("empty namespace")
		}
		for _, name := range o.PullSecrets {
			if name == "" {
				t.Fatal("a pull secret without a name")
			}
		}
		for _, img := range o.Images {
			if img.Err == nil && img.Canonical == "" {
				t.Fatalf("image %q parsed without a canonical name", img.Ref)
			}
		}
	})
}

func TestFromPodMatchesDecode(t *testing.T) {
	raw := `{"kind":"Pod","metadata":{"name":"p","namespace":"ns","labels":{"app":"a"}},"spec":{"serviceAccountName":"sa",
"imagePullSecrets":[{"name":"s1"},{"name":""}],"containers":[{"name":"a","image":"nginx:1"},{"name":"b","image":"nginx:1"}],
"initContainers":[{"name":"i","image":"busybox@sha256:` + strings.Repeat("a", 64) + `"}],"ephemeralContainers":[{"name":"e","image":"debug"}]}}`
	want, err := workload.Decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	got := workload.FromPod(workload.Pod{Namespace: "ns", Name: "p", Labels: map[string]string{"app": "a"}, ServiceAccount: "sa",
		PullSecrets: []string{"s1"}, Containers: []workload.PodContainer{{Name: "a", Image: "nginx:1"}, {Name: "b", Image: "nginx:1"}},
		InitContainers:      []workload.PodContainer{{Name: "i", Image: "busybox@sha256:" + strings.Repeat("a", 64)}},
		EphemeralContainers: []workload.PodContainer{{Name: "e", Image: "debug"}}})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromPod:\n%+v\nDecode:\n%+v", got, want)
	}
}
