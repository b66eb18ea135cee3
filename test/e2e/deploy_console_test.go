package e2e

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestDeployConsoleChart renders the chart with the console: off by
// default (no Service, no flag), on it is served by the API's pod with its
// own Service, the serving certificate names that Service, and the audit
// store URL comes from a Secret, never the rendered manifest.
func TestDeployConsoleChart(t *testing.T) {
	const ns = "imagegate-console"
	find := func(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
		for _, o := range objs {
			if o.GetKind() == kind && o.GetName() == name {
				return o
			}
		}
		return nil
	}
	base := []string{"clusterId=c1", "api.enabled=true", "api.tokensSecret=tokens"}
	off := helmTemplate(t, ns, base...)
	if find(off, "Service", "imagegate-console") != nil {
		t.Fatal("console Service rendered while api.console.enabled is false")
	}
	if args := containerArgs(t, find(off, "Deployment", "imagegate-api")); slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--console") }) {
		t.Fatalf("console flag while off: %v", args)
	}
	on := helmTemplate(t, ns, append(base, "api.console.enabled=true", "api.console.port=9555", "api.console.auditStoreSecret=audit-pg")...)
	svc := find(on, "Service", "imagegate-console")
	if svc == nil {
		t.Fatal("no Service imagegate-console")
	}
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	if len(ports) != 1 || ports[0].(map[string]any)["port"] != int64(9555) {
		t.Fatalf("console Service ports %v", ports)
	}
	dep := find(on, "Deployment", "imagegate-api")
	args := containerArgs(t, dep)
	for _, want := range []string{"--console-listen=:9555", "--audit-store=$(IMAGEGATE_AUDIT_STORE)"} {
		if !slices.Contains(args, want) {
			t.Fatalf("API args lack %s: %v", want, args)
		}
	}
	cs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	env, _, _ := unstructured.NestedSlice(cs[0].(map[string]any), "env")
	found := false
	for _, e := range env {
		m := e.(map[string]any)
		if m["name"] == "IMAGEGATE_AUDIT_STORE" {
			ref, _, _ := unstructured.NestedString(m, "valueFrom", "secretKeyRef", "name")
			found = ref == "audit-pg"
		}
	}
	if !found {
		t.Fatalf("IMAGEGATE_AUDIT_STORE not from Secret audit-pg: %v", env)
	}
	hosts := ""
	for _, a := range containerArgs(t, find(on, "Deployment", "imagegate")) {
		if h, ok := strings.CutPrefix(a, "--cert-bootstrap-hosts="); ok {
			hosts = h
		}
	}
	if !strings.Contains(hosts, "imagegate-console."+ns+".svc") {
		t.Fatalf("serving certificate hosts %q lack the console Service", hosts)
	}
}
