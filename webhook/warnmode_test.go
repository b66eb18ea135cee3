package webhook_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
	"github.com/prometheus/client_golang/prometheus"
)

// A warn-mode BinarySecurityPolicy and an enforce one limited by images.
const warnPolicies = `
apiVersion: imagegate.dev/v1alpha1
kind: Attestor
metadata: {name: ci}
spec:
  publicKeys:
  - |
    -----BEGIN PUBLIC KEY-----
    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE17L1CDixpC6Umq7sna4KFil3Hd2i
    Vwa/O2oifOFPIoRfQXLnmx0Zky5fhVSiU/lkeX+0ojts/CFlxIp7EYr+xw==
    -----END PUBLIC KEY-----
---
apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: trial}
spec:
  policy: {requiredAttestors: [ci]}
  clusters: [{clusterId: c1}]
  mode: warn
---
apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: own-images}
spec:
  policy: {requiredAttestors: [ci]}
  clusters: [{clusterId: c1}]
  images: ["registry.example.com/*"]
`

type eventSink struct {
	mu     sync.Mutex
	events []*audit.Event
}

func (s *eventSink) Name() string { return "test" }

func (s *eventSink) Write(evs []*audit.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, evs...)
	return nil
}

// An unsigned image only the warn-mode policy governs is admitted; the
// response's warnings and the audit event name the policy and the attestor
// that would have denied it. One the enforce policy's images name is denied.
func TestWarnModeAdmitsWithWarningAndEvent(t *testing.T) {
	objs, err := policy.Parse("p.yaml", []byte(warnPolicies))
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
	sink := &eventSink{}
	rec, err := audit.NewRecorder([]audit.Sink{sink}, audit.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	h, err := webhook.NewHandler(admission.NewDecider(admission.Static{E: e}, facts.None{}), webhook.WithAuditor(rec),
		webhook.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	const line = `image "docker.io/library/nginx:1.25" would be denied by BinarySecurityPolicy "trial" (mode warn): not signed by attestor "ci": no verified signature`
	_, out := post(t, h, reviewJSON("CREATE", "Pod", "default", pod("default", "docker.io/library/nginx:1.25"), ""), "application/json", "")
	if out == nil || !out.Response.Allowed {
		t.Fatalf("warn mode denied: %+v", out)
	}
	if len(out.Response.Warnings) != 1 || out.Response.Warnings[0] != line {
		t.Errorf("warnings %q, want [%q]", out.Response.Warnings, line)
	}
	_, out = post(t, h, reviewJSON("CREATE", "Pod", "default", pod("default", "registry.example.com/app:1"), ""), "application/json", "")
	if out == nil || out.Response.Allowed || !strings.Contains(out.Response.Status.Message, `is not signed by attestor "ci"`) {
		t.Fatalf("enforce policy's image admitted: %+v", out)
	}
	rec.Close()
	if len(sink.events) != 2 {
		t.Fatalf("%d audit events, want 2", len(sink.events))
	}
	ev := sink.events[0]
	if ev.Decision != audit.DecisionAllowed || len(ev.Warnings) != 1 || ev.Warnings[0] != line ||
		len(ev.Images) != 1 || len(ev.Images[0].Reasons) != 1 || ev.Images[0].Reasons[0] != line {
		t.Errorf("audit event %+v: want allowed, with the warn-mode line as warning and image reason", ev)
	}
}
