package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
	"github.com/imagegate/imagegate/workload"
)

const strategies = `
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-bad}
spec: {strategyId: 1, clusterId: c1, ruleAction: 2, imageName: ["bad-*"]}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: alert-unscanned}
spec: {strategyId: 2, clusterId: c1, ruleAction: 1, unScanedImage: true, imageName: ["noisy"]}
`

func realDecider(t testing.TB) webhook.Decider {
	t.Helper()
	objs, err := policy.Parse("s.yaml", []byte(strategies))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.NewSnapshot(objs...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := rego.New(context.Background(), snap, rego.WithClusterID("c1"))
	if err != nil {
		t.Fatal(err)
	}
	return admission.NewDecider(admission.Static{E: e}, facts.None{})
}

type reviewOut struct {
	APIVersion, Kind string
	Response         struct {
		UID      string
		Allowed  bool
		Warnings []string
		Status   *struct {
			Code    int
			Message string
		}
		AuditAnnotations map[string]string
	}
}

func pod(ns, image string) string {
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"` + ns + `"},"spec":{"containers":[{"name":"c","image":"` + image + `"}]}}`
}

func reviewJSON(op, kind, ns, object, old string) string {
	s := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"uid-1","kind":{"group":"","version":"v1","kind":"` + kind +
		`"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"` + ns + `","operation":"` + op + `","userInfo":{"username":"alice"}`
	if object != "" {
		s += `,"object":` + object
	}
	if old != "" {
		s += `,"oldObject":` + old
	}
	return s + `}}`
}

func post(t *testing.T, h http.Handler, body, contentType, query string) (*httptest.ResponseRecorder, *reviewOut) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/validate"+query, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return rec, nil
	}
	var out reviewOut
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, rec.Body)
	}
	return rec, &out
}

func TestHandlerDecisions(t *testing.T) {
	h, err := webhook.NewHandler(realDecider(t), webhook.WithExemptNamespaces("kube-system"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, body string
		allowed    bool
		msg        string // in status.message
		warning    string
		annotation string // auditAnnotations["decision"]
	}{
		{"blocked", reviewJSON("CREATE", "Pod", "default", pod("default", "bad-app:1"), ""), false, `blocked by strategy 1 "block-bad"`, "", "denied"},
		{"allowed", reviewJSON("CREATE", "Pod", "default", pod("default", "good:1"), ""), true, "", "", "allowed"},
		{"alert warns", reviewJSON("CREATE", "Pod", "default", pod("default", "noisy"), ""), true, "", `alerted by strategy 2 "alert-unscanned": unscanned`, "allowed"},
		{"exempt namespace", reviewJSON("CREATE", "Pod", "kube-system", pod("kube-system", "bad-app:1"), ""), true, "", "", ""},
		{"delete untouched", reviewJSON("DELETE", "Pod", "default", "", pod("default", "bad-app:1")), true, "", "", ""},
		{"other kind untouched", reviewJSON("CREATE", "ConfigMap", "default", `{"kind":"ConfigMap"}`, ""), true, "", "", ""},
		{"update without image change costs nothing", reviewJSON("UPDATE", "Pod", "default", pod("default", "bad-app:1"), pod("default", "bad-app:1")), true, "", "", ""},
		{"update changing image", reviewJSON("UPDATE", "Pod", "default", pod("default", "bad-app:2"), pod("default", "good:1")), false, "bad-app:2", "", "denied"},
		{"bad reference names the image", reviewJSON("CREATE", "Pod", "default", pod("default", "Bad Image"), ""), false, `image "Bad Image" is not a valid image reference`, "", "denied"},
		{"kind disagrees with object", reviewJSON("CREATE", "Pod", "default", `{"kind":"Deployment","spec":{}}`, ""), false, "object is a Deployment, but the request is for a Pod", "", ""},
		{"deployment blocked", reviewJSON("CREATE", "Deployment", "default", `{"kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"bad-x"}]}}}}`, ""), false, "bad-x", "", "denied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, out := post(t, h, c.body, "application/json", "?timeout=5s")
			if out == nil {
				t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
			}
			r := out.Response
			if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || r.UID != "uid-1" {
				t.Errorf("envelope %+v", out)
			}
			if r.Allowed != c.allowed {
				t.Errorf("allowed = %v, want %v (%+v)", r.Allowed, c.allowed, r.Status)
			}
			if c.msg != "" && (r.Status == nil || !strings.Contains(r.Status.Message, c.msg)) {
				t.Errorf("status %+v lacks %q", r.Status, c.msg)
			}
			if c.warning != "" && (len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], c.warning)) {
				t.Errorf("warnings %q lack %q", r.Warnings, c.warning)
			}
			if r.AuditAnnotations[webhook.AnnotationDecision] != c.annotation {
				t.Errorf("audit annotations %v, want decision %q", r.AuditAnnotations, c.annotation)
			}
			if !c.allowed && c.annotation == "denied" && !strings.Contains(r.AuditAnnotations[webhook.AnnotationViolations], c.msg) {
				t.Errorf("violations annotation %q lacks %q", r.AuditAnnotations[webhook.AnnotationViolations], c.msg)
			}
		})
	}
}

func TestHandlerBadRequests(t *testing.T) {
	h, _ := webhook.NewHandler(realDecider(t), webhook.WithMaxBodyBytes(1024))
	cases := []struct {
		name, body, contentType string
		code                    int
		msg                     string
	}{
		{"not json", "{nope", "application/json", 400, "malformed AdmissionReview"},
		{"wrong apiVersion", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`, "application/json", 400, "expected apiVersion admission.k8s.io/v1"},
		{"no request", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, "application/json", 400, "request is missing"},
		{"no uid", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`, "application/json", 400, "request.uid is missing"},
		{"too big", `{"apiVersion":"` + strings.Repeat("x", 2000) + `"}`, "application/json", 413, "over 1024 bytes"},
		{"content type", reviewJSON("CREATE", "Pod", "default", pod("default", "x"), ""), "text/plain", 415, "expected application/json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, _ := post(t, h, c.body, c.contentType, "")
			if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.msg) {
				t.Errorf("HTTP %d %q, want %d with %q", rec.Code, rec.Body, c.code, c.msg)
			}
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/validate", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
}

// deciderFunc adapts a function to webhook.Decider for fault injection.
type deciderFunc func(ctx context.Context, obj *workload.Object) (*rego.Decision, error)

func (f deciderFunc) Decide(ctx context.Context, obj *workload.Object) (*rego.Decision, error) {
	return f(ctx, obj)
}

func TestHandlerDeadlineFailsClosed(t *testing.T) {
	slow := deciderFunc(func(ctx context.Context, _ *workload.Object) (*rego.Decision, error) {
		<-ctx.Done() // facts that never arrive
		return nil, ctx.Err()
	})
	for _, failOpen := range []bool{false, true} {
		h, _ := webhook.NewHandler(slow, webhook.WithFailOpen(failOpen))
		start := time.Now()
		_, out := post(t, h, reviewJSON("CREATE", "Pod", "default", pod("default", "x"), ""), "application/json", "?timeout=1s")
		took := time.Since(start)
		if took >= time.Second || took < 800*time.Millisecond {
			t.Errorf("answered after %v; want just under the 1s timeout", took)
		}
		if out.Response.Allowed != failOpen || out.Response.UID != "uid-1" {
			t.Errorf("failOpen=%v: %+v", failOpen, out.Response)
		}
		text := fmt32(out)
		if !strings.Contains(text, "could not decide") || !strings.Contains(text, "deadline exceeded") {
			t.Errorf("failOpen=%v: reason missing: %s", failOpen, text)
		}
	}
}

func fmt32(out *reviewOut) string {
	b, _ := json.Marshal(out)
	return string(b)
}

func TestHandlerRecoversPanics(t *testing.T) {
	boom := deciderFunc(func(context.Context, *workload.Object) (*rego.Decision, error) { panic("boom") })
	h, _ := webhook.NewHandler(boom)
	_, out := post(t, h, reviewJSON("CREATE", "Pod", "default", pod("default", "x"), ""), "application/json", "")
	if out == nil || out.Response.Allowed || out.Response.UID != "uid-1" || !strings.Contains(out.Response.Status.Message, "internal error: boom") {
		t.Fatalf("%+v", out)
	}
}

func TestHandlerBoundsConcurrency(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	blocking := deciderFunc(func(ctx context.Context, _ *workload.Object) (*rego.Decision, error) {
		entered <- struct{}{}
		select {
		case <-release:
			return &rego.Decision{Allowed: true}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	h, _ := webhook.NewHandler(blocking, webhook.WithMaxInFlight(1))
	done := make(chan *reviewOut, 1)
	go func() {
		_, out := post(t, h, reviewJSON("CREATE", "Pod", "default", pod("default", "x"), ""), "application/json", "?timeout=5s")
		done <- out
	}()
	<-entered
	// The only slot is taken: a second request waits and fails closed at its deadline.
	_, out := post(t, h, reviewJSON("CREATE", "Pod", "default", pod("default", "y"), ""), "application/json", "?timeout=300ms")
	if out.Response.Allowed || !strings.Contains(out.Response.Status.Message, "too many requests in flight") {
		t.Errorf("second request: %+v", out.Response)
	}
	close(release)
	if first := <-done; !first.Response.Allowed {
		t.Errorf("first request: %+v", first.Response)
	}
}

func TestNewHandlerRejectsBadOptions(t *testing.T) {
	if _, err := webhook.NewHandler(nil); err == nil {
		t.Error("nil decider accepted")
	}
	if _, err := webhook.NewHandler(realDecider(t), webhook.WithMaxInFlight(0)); err == nil {
		t.Error("zero in flight accepted")
	}
	if _, err := webhook.NewHandler(realDecider(t), webhook.WithLogger(nil)); err == nil {
		t.Error("nil logger accepted")
	}
}

// FuzzHandler: no body makes the handler panic or answer without the UID it
// was given.
func FuzzHandler(f *testing.F) {
	f.Add([]byte(reviewJSON("CREATE", "Pod", "default", pod("default", "bad-app:1"), "")))
	f.Add([]byte(reviewJSON("UPDATE", "CronJob", "ns", `{"kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[{"image":"@@"}]}}}}}}`, `{}`)))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","object":null}}`))
	h, err := webhook.NewHandler(realDecider(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return
		}
		var in struct{ Request struct{ UID string } }
		var out reviewOut
		_ = json.Unmarshal(body, &in)
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response.UID != in.Request.UID {
			t.Fatalf("answer %s for request uid %q", rec.Body, in.Request.UID)
		}
	})
}
