package audit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
)

// The fixture: a real snapshot, engine, decider and webhook handler, with
// facts from a facts file (digests, a finding, a signature error).
const fixturePolicies = `
apiVersion: imagegate.dev/v1alpha1
kind: Attestor
metadata: {name: ci}
spec:
  publicKeys:
  - |
    -----BEGIN PUBLIC KEY-----
    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEIEJtfaDTtTritO+MNkbZLBxG4rhE
    0VQLFXCgAwbSMd7b7p+/K+u/1FjgzBNFIHND2REgSekA9rp57JunJDg0OQ==
    -----END PUBLIC KEY-----
---
apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: signed}
spec:
  policy: {requiredAttestors: [ci]}
  clusters: [{clusterId: c1, namespaces: [secure]}]
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-bad}
spec: {strategyId: 1, strategyName: block bad, clusterId: c1, ruleAction: 2, imageName: ["bad-*"]}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: alert-vul}
spec:
  strategyId: 2
  strategyName: alert high vulns
  clusterId: c1
  ruleAction: 1
  alarmDetail: {vul: {riskLevel: [high]}}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: allow-trusted}
spec: {strategyId: 3, strategyName: trusted, clusterId: c1, ruleAction: 3, imageName: ["bad-trusted"]}
`

const fixtureFacts = `
images:
  "registry.example.com/team/vuln:1":
    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
    scan:
      scannedAt: "2026-11-01T00:00:00Z"
      findings: [{category: Vul, id: CVE-2024-1234, level: high, class: cve}, {category: Vul, id: CVE-2024-9, level: low, class: cve}]
  "registry.example.com/team/app:2":
    digest: sha256:2222222222222222222222222222222222222222222222222222222222222222
    attestorErrors: {ci: "no matching signatures"}
    scan: {scannedAt: "2026-11-01T00:00:00Z"}
  "registry.example.com/team/ok:1":
    digest: sha256:3333333333333333333333333333333333333333333333333333333333333333
    scan: {scannedAt: "2026-11-01T00:00:00Z"}
`

func fixtureDecider(t testing.TB) *admission.Decider {
	t.Helper()
	objs, err := policy.Parse("p.yaml", []byte(fixturePolicies))
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
	f, err := facts.ParseFile([]byte(fixtureFacts))
	if err != nil {
		t.Fatal(err)
	}
	return admission.NewDecider(admission.Static{E: e}, f)
}

func newHandler(t testing.TB, opts ...webhook.Option) http.Handler {
	t.Helper()
	h, err := webhook.NewHandler(fixtureDecider(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func podReview(uid, ns, name string, dryRun bool, images ...string) string {
	var cs []string
	for i, img := range images {
		cs = append(cs, `{"name":"c`+string(rune('a'+i))+`","image":"`+img+`"}`)
	}
	dry := "false"
	if dryRun {
		dry = "true"
	}
	return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"` + uid + `","kind":{"group":"","version":"v1","kind":"Pod"},` +
		`"resource":{"group":"","version":"v1","resource":"pods"},"name":"` + name + `","namespace":"` + ns + `","operation":"CREATE","dryRun":` + dry + `,` +
		`"userInfo":{"username":"alice","groups":["dev","system:authenticated"]},` +
		`"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"` + name + `","namespace":"` + ns + `"},"spec":{"containers":[` + strings.Join(cs, ",") + `]}}}}`
}

func admit(t testing.TB, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/validate?timeout=5s", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("admission: %d %s", w.Code, w.Body)
	}
	return w
}
