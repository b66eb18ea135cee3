package workload_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/workload"
)

// TestDecodeManifestStrict: a field the Kubernetes type does not have is an
// error naming file, line and path, wherever the pod (template) sits; the
// fields Kubernetes does have, however rarely used, decode.
func TestDecodeManifestStrict(t *testing.T) {
	cases := []struct {
		name, doc string
		line      int
		path, msg string
	}{
		{"pod containerz", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containerz:\n  - {name: a, image: nginx}\n",
			5, "spec.containerz", `unknown field (did you mean "containers"?)`},
		{"deployment templat", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {}\n  templat:\n    spec: {containers: [{name: a, image: nginx}]}\n",
			6, "spec.templat", `unknown field (did you mean "template"?)`},
		{"container field", "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: nginx\n    imagePullPolicyy: Always\n",
			7, "spec.containers[0].imagePullPolicyy", `did you mean "imagePullPolicy"?`},
		{"cronjob deep", "kind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: x\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          initContainers: [{name: i, image: busybox, bogus: 1}]\n          containers: [{name: a, image: nginx}]\n",
			9, "spec.jobTemplate.spec.template.spec.initContainers[0].bogus", "unknown field"},
		{"metadata", "kind: Pod\nmetadata: {name: p, labelz: {a: b}}\nspec: {containers: [{name: a, image: nginx}]}\n",
			2, "metadata.labelz", `did you mean "labels"?`},
		{"list item", "kind: List\nitems:\n- kind: Pod\n  metadata: {name: p}\n  spec: {containers: [{name: a, image: nginx}], hostnetwork: true}\n",
			5, "items[0].spec.hostnetwork", `did you mean "hostNetwork"?`},
		{"admission review object", `{"kind":"AdmissionReview","request":{"kind":{"kind":"Pod"},"object":{"kind":"Pod","metadata":{"name":"p"},` + "\n" + `"spec":{"containers":[{"name":"a","image":"nginx","imagee":"x"}]}}}}`,
			2, "request.object.spec.containers[0].imagee", "unknown field"},
		{"duplicate", "kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: nginx}]\n  containers: [{name: b, image: redis}]\n",
			5, "spec.containers", "duplicate field"},
		{"object for a list", "kind: Pod\nmetadata: {name: p}\nspec:\n  containers: {name: a, image: nginx}\n",
			4, "spec.containers", "expected a list, got an object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := workload.DecodeManifest("m.yaml", []byte(c.doc))
			var fe *workload.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T), want a *workload.FieldError", err, err)
			}
			if fe.File != "m.yaml" || fe.Line != c.line || fe.Path != c.path || !strings.Contains(fe.Msg, c.msg) {
				t.Errorf("got %s:%d %s: %s\nwant m.yaml:%d %s: …%s…", fe.File, fe.Line, fe.Path, fe.Msg, c.line, c.path, c.msg)
			}
		})
	}
}

func TestDecodeManifestStrictAcceptsKubernetesFields(t *testing.T) {
	doc := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: prod
  uid: 1234
  resourceVersion: "5"
  creationTimestamp: "2026-01-01T00:00:00Z"
  annotations: {a: b}
spec:
  replicas: 3
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      securityContext: {runAsNonRoot: true}
      volumes: [{name: v, emptyDir: {sizeLimit: 1Gi}}]
      containers:
      - name: app
        image: nginx:1.27
        ports: [{containerPort: 80}]
        resources: {limits: {cpu: 500m, memory: 128Mi}, requests: {cpu: 0.1}}
        livenessProbe: {httpGet: {path: /, port: http}}
        env: [{name: A, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
status: {replicas: 3}
`
	objs, err := workload.DecodeManifest("d.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || len(objs[0].Images) != 1 || objs[0].Images[0].Ref != "nginx:1.27" {
		t.Errorf("decoded %+v", objs)
	}
}

// TestDecodeLenient: the webhook's path (Decode, DecodeAs) ignores fields
// it does not know, which a newer API server may send.
func TestDecodeLenient(t *testing.T) {
	raw := `{"kind":"Pod","metadata":{"name":"p"},"spec":{"futureField":{"x":1},"containers":[{"name":"a","image":"nginx","futureToo":true}]}}`
	for name, decode := range map[string]func() (*workload.Object, error){
		"Decode":   func() (*workload.Object, error) { return workload.Decode([]byte(raw)) },
		"DecodeAs": func() (*workload.Object, error) { return workload.DecodeAs("Pod", []byte(raw)) },
	} {
		t.Run(name, func(t *testing.T) {
			o, err := decode()
			if err != nil || len(o.Images) != 1 {
				t.Fatalf("%+v, %v", o, err)
			}
		})
	}
}
