package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/imagegate/imagegate/attestation"
	"github.com/imagegate/imagegate/webhook"
	"github.com/imagegate/imagegate/workload"
	"github.com/prometheus/client_golang/prometheus"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// fakeResolver answers from a map of references; it counts calls and
// remembers the credentials it was given.
type fakeResolver struct {
	digests map[string]string
	mu      sync.Mutex
	calls   []string
	creds   []string
	block   chan struct{} // non-nil: wait for it or the deadline
}

func (f *fakeResolver) Resolve(ctx context.Context, creds attestation.Credentials, img workload.Image) (string, error) {
	f.mu.Lock()
	f.calls = append(f.calls, img.Ref)
	f.creds = append(f.creds, creds.ID)
	f.mu.Unlock()
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if img.Ref == "panic:1" {
		panic("boom")
	}
	d, ok := f.digests[img.Ref]
	if !ok {
		return "", &attestation.UnverifiableError{Reason: "resolving the tag: registry unreachable or failing"}
	}
	return d, nil
}

func (f *fakeResolver) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

type mutateOut struct {
	Response struct {
		UID              string
		Allowed          bool
		PatchType        string
		Patch            []byte
		AuditAnnotations map[string]string
	}
}

func postMutate(t *testing.T, h http.Handler, body, query string) *mutateOut {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/mutate"+query, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	var out mutateOut
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, rec.Body)
	}
	if out.Response.UID != "uid-1" || !out.Response.Allowed {
		t.Fatalf("the mutator must admit and keep the UID: %s", rec.Body)
	}
	return &out
}

func podSpec(ns, spec string) string {
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"` + ns + `"},"spec":` + spec + `}`
}

// images reads every container image of a pod, list by list.
func images(t *testing.T, podJSON []byte) map[string][]string {
	t.Helper()
	var p struct {
		Spec map[string][]struct{ Image string } `json:"spec"`
	}
	if err := json.Unmarshal(podJSON, &p); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for list, cs := range p.Spec {
		for _, c := range cs {
			out[list] = append(out[list], c.Image)
		}
	}
	return out
}

func TestMutatorPinsPods(t *testing.T) {
	const (
		byTag  = `{"containers":[{"name":"c","image":"reg.example.com/app:1"}]}`
		three  = `{"initContainers":[{"name":"i","image":"reg.example.com/app:1"}],"containers":[{"name":"a","image":"busybox"},{"name":"b","image":"reg.example.com/app:1"},{"name":"d","image":"reg.example.com/app@` + digestA + `"}],"ephemeralContainers":[{"name":"e","image":"localhost:5000/dbg:2"}]}`
		oldEph = `{"containers":[{"name":"c","image":"reg.example.com/app:1@` + digestA + `"}],"ephemeralContainers":[{"name":"e1","image":"localhost:5000/dbg:2"}]}`
		newEph = `{"containers":[{"name":"c","image":"reg.example.com/app:1@` + digestA + `"}],"ephemeralContainers":[{"name":"e1","image":"localhost:5000/dbg:2"},{"name":"e2","image":"localhost:5000/dbg:2"}]}`
	)
	deployment := `{"kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"reg.example.com/app:1"}]}}}}`
	cases := []struct {
		name, body string
		want       map[string][]string // images after the patch; nil: no patch
		resolved   []string            // resolutions asked for, in any order
	}{
		{"pod by tag is pinned", reviewJSON("CREATE", "Pod", "default", podSpec("default", byTag), ""),
			map[string][]string{"containers": {"reg.example.com/app:1@" + digestA}}, []string{"reg.example.com/app:1"}},
		{"pod by digest is left alone", reviewJSON("CREATE", "Pod", "default", podSpec("default", `{"containers":[{"name":"c","image":"reg.example.com/app@`+digestA+`"}]}`), ""),
			nil, nil},
		{"every list, implicit latest written out, one resolution per image", reviewJSON("CREATE", "Pod", "default", podSpec("default", three), ""),
			map[string][]string{
				"initContainers":      {"reg.example.com/app:1@" + digestA},
				"containers":          {"busybox:latest@" + digestB, "reg.example.com/app:1@" + digestA, "reg.example.com/app@" + digestA},
				"ephemeralContainers": {"localhost:5000/dbg:2@" + digestB},
			}, []string{"busybox", "reg.example.com/app:1", "localhost:5000/dbg:2"}},
		{"exempt namespace is not mutated", reviewJSON("CREATE", "Pod", "kube-system", podSpec("kube-system", byTag), ""), nil, nil},
		{"exempt namespace named by the object only", reviewJSON("CREATE", "Pod", "", podSpec("kube-system", byTag), ""), nil, nil},
		{"Deployment template is not rewritten", reviewJSON("CREATE", "Deployment", "default", deployment, ""), nil, nil},
		{"resolution fails: no patch", reviewJSON("CREATE", "Pod", "default", podSpec("default", `{"containers":[{"name":"c","image":"reg.example.com/gone:1"}]}`), ""),
			nil, []string{"reg.example.com/gone:1"}},
		{"one of two fails: the other is pinned", reviewJSON("CREATE", "Pod", "default", podSpec("default", `{"containers":[{"name":"a","image":"reg.example.com/gone:1"},{"name":"b","image":"reg.example.com/app:1"}]}`), ""),
			map[string][]string{"containers": {"reg.example.com/gone:1", "reg.example.com/app:1@" + digestA}}, []string{"reg.example.com/gone:1", "reg.example.com/app:1"}},
		{"ephemeral container added: only it is pinned", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"uid-1","kind":{"kind":"Pod"},"subResource":"ephemeralcontainers","namespace":"default","operation":"UPDATE","object":` + podSpec("default", newEph) + `,"oldObject":` + podSpec("default", oldEph) + `}}`,
			map[string][]string{"containers": {"reg.example.com/app:1@" + digestA}, "ephemeralContainers": {"localhost:5000/dbg:2", "localhost:5000/dbg:2@" + digestB}}, []string{"localhost:5000/dbg:2"}},
		{"update changing an image pins it", reviewJSON("UPDATE", "Pod", "default", podSpec("default", byTag), podSpec("default", `{"containers":[{"name":"c","image":"reg.example.com/app:0"}]}`)),
			map[string][]string{"containers": {"reg.example.com/app:1@" + digestA}}, []string{"reg.example.com/app:1"}},
		{"update changing no image", reviewJSON("UPDATE", "Pod", "default", podSpec("default", byTag), podSpec("default", byTag)), nil, nil},
		{"delete", reviewJSON("DELETE", "Pod", "default", "", podSpec("default", byTag)), nil, nil},
		{"status subresource", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"uid-1","kind":{"kind":"Pod"},"subResource":"status","namespace":"default","operation":"UPDATE","object":` + podSpec("default", byTag) + `}}`, nil, nil},
		{"object of another kind", reviewJSON("CREATE", "Pod", "default", deployment, ""), nil, nil},
		{"unparsable image left for the validating webhook", reviewJSON("CREATE", "Pod", "default", podSpec("default", `{"containers":[{"name":"c","image":"Bad Image"}]}`), ""), nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &fakeResolver{digests: map[string]string{
				"reg.example.com/app:1": digestA, "busybox": digestB, "localhost:5000/dbg:2": digestB,
			}}
			m, err := webhook.NewMutator(r, webhook.WithExemptNamespaces("kube-system"))
			if err != nil {
				t.Fatal(err)
			}
			out := postMutate(t, m, c.body, "?timeout=5s")
			if got := r.called(); !sameSet(got, c.resolved) {
				t.Errorf("resolved %q, want %q", got, c.resolved)
			}
			if c.want == nil {
				if out.Response.Patch != nil || out.Response.PatchType != "" {
					t.Fatalf("unexpected patch %s (%s)", out.Response.Patch, out.Response.PatchType)
				}
				return
			}
			if out.Response.PatchType != "JSONPatch" {
				t.Fatalf("patchType %q, patch %s", out.Response.PatchType, out.Response.Patch)
			}
			var rv struct {
				Request struct{ Object json.RawMessage }
			}
			_ = json.Unmarshal([]byte(c.body), &rv)
			patch, err := jsonpatch.DecodePatch(out.Response.Patch)
			if err != nil {
				t.Fatalf("patch %s: %v", out.Response.Patch, err)
			}
			// As the API server does: apply the patch to the object it sent.
			after, err := patch.Apply(rv.Request.Object)
			if err != nil {
				t.Fatalf("patch %s does not apply: %v", out.Response.Patch, err)
			}
			got := images(t, after)
			for list, want := range c.want {
				if strings.Join(got[list], " ") != strings.Join(want, " ") {
					t.Errorf("%s: %q, want %q", list, got[list], want)
				}
			}
			if a := out.Response.AuditAnnotations[webhook.AnnotationPinned]; !strings.Contains(a, "@sha256:") {
				t.Errorf("audit annotation %q", a)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// podKeychains gives every pod a keychain (credentials are the resolver's
// business; the mutator only names them).
type podKeychains struct{}

func (podKeychains) Keychain(namespace, sa string, secrets []string) authn.Keychain {
	return authn.DefaultKeychain
}

func TestMutatorUsesPodCredentials(t *testing.T) {
	r := &fakeResolver{digests: map[string]string{"reg.example.com/app:1": digestA}}
	m, _ := webhook.NewMutator(r, webhook.WithPullCredentials(podKeychains{}))
	postMutate(t, m, reviewJSON("CREATE", "Pod", "team", podSpec("team",
		`{"serviceAccountName":"builder","imagePullSecrets":[{"name":"regcred"},{"name":""}],"containers":[{"name":"c","image":"reg.example.com/app:1"}]}`), ""), "")
	if len(r.creds) != 1 || r.creds[0] != "team/builder/regcred" {
		t.Errorf("credentials %q, want the pod's team/builder/regcred", r.creds)
	}
}

// TestMutatorFailsOpenAndCounts: a resolver that is slow, failing or
// panicking never denies and never patches; each is logged and counted.
func TestMutatorFailsOpenAndCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := &fakeResolver{digests: map[string]string{}}
	m, _ := webhook.NewMutator(r, webhook.WithRegisterer(reg))
	for _, image := range []string{"reg.example.com/gone:1", "panic:1"} {
		out := postMutate(t, m, reviewJSON("CREATE", "Pod", "default", pod("default", image), ""), "")
		if out.Response.Patch != nil {
			t.Errorf("%s: patch %s", image, out.Response.Patch)
		}
	}
	r.block = make(chan struct{})
	start := time.Now()
	out := postMutate(t, m, reviewJSON("CREATE", "Pod", "default", pod("default", "reg.example.com/slow:1"), ""), "?timeout=500ms")
	if took := time.Since(start); took >= 500*time.Millisecond {
		t.Errorf("answered after %v, past the 500ms timeout", took)
	}
	if out.Response.Patch != nil {
		t.Errorf("slow: patch %s", out.Response.Patch)
	}
	if got := counter(t, reg, "imagegate_digest_resolutions_total", "error"); got != 3 {
		t.Errorf("imagegate_digest_resolutions_total{result=error} = %v, want 3", got)
	}
	if got := counter(t, reg, "imagegate_mutation_requests_total", "error"); got != 3 {
		t.Errorf("imagegate_mutation_requests_total{result=error} = %v, want 3", got)
	}
}

func TestMutatorOffAndBadRequests(t *testing.T) {
	off, _ := webhook.NewMutator(nil)
	if out := postMutate(t, off, reviewJSON("CREATE", "Pod", "default", pod("default", "reg.example.com/app:1"), ""), ""); out.Response.Patch != nil {
		t.Errorf("pinning off: patch %s", out.Response.Patch)
	}
	m, _ := webhook.NewMutator(&fakeResolver{}, webhook.WithMaxBodyBytes(1024))
	for _, c := range []struct {
		method, body, contentType string
		code                      int
	}{
		{http.MethodGet, "", "application/json", http.StatusMethodNotAllowed},
		{http.MethodPost, "{}", "text/plain", http.StatusUnsupportedMediaType},
		{http.MethodPost, "{nope", "application/json", http.StatusBadRequest},
		{http.MethodPost, strings.Repeat("x", 2000), "application/json", http.StatusRequestEntityTooLarge},
	} {
		req := httptest.NewRequest(c.method, "/mutate", strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.contentType)
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		if rec.Code != c.code {
			t.Errorf("%s %q: %d, want %d", c.method, c.body, rec.Code, c.code)
		}
	}
	if _, err := webhook.NewMutator(nil, webhook.WithMaxInFlight(0)); err == nil {
		t.Error("zero in flight accepted")
	}
}

func counter(t *testing.T, g prometheus.Gatherer, name, result string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
