package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/test/e2e/harness"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestDeployMonitoring renders the monitoring pieces of the chart (off by
// default, each on by its value) and of the kustomize component, and checks
// that they carry deploy/grafana's dashboard and deploy/prometheus's alerts,
// and that the ServiceMonitor selects the Service's metrics port. Nothing
// here needs a cluster: the Prometheus Operator's CRDs are not installed in
// the test's API server, so these objects are not dry-run applied.
func TestDeployMonitoring(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dashboard := readJSON(t, filepath.Join(root, "deploy", "grafana", "imagegate.json"))
	rules := readYAML(t, filepath.Join(root, "deploy", "prometheus", "imagegate-rules.yaml"))

	t.Run("helm chart", func(t *testing.T) {
		helm := helmBinary(t)
		chart := filepath.Join(root, "deploy", "helm", "imagegate")
		render := func(sets ...string) []*unstructured.Unstructured {
			args := []string{"template", "imagegate", chart, "--namespace", "imagegate-system", "--set", "clusterId=e2e-cluster"}
			for _, s := range sets {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(helm, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("helm template %v: %v\n%s", sets, err, out)
			}
			return splitYAML(t, out)
		}
		for _, o := range render() {
			if k := o.GetKind(); k == "ServiceMonitor" || k == "PrometheusRule" || (k == "ConfigMap" && o.GetLabels()["grafana_dashboard"] != "") {
				t.Errorf("rendered by default: %s %s", k, o.GetName())
			}
		}
		objs := render("metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom",
			"metrics.prometheusRule.enabled=true", "metrics.grafanaDashboard.enabled=true", "webhook.timeoutSeconds=5")
		checkServiceMonitor(t, objs, "imagegate", "imagegate")
		if sm := find(objs, "ServiceMonitor", "imagegate"); sm != nil && sm.GetLabels()["release"] != "prom" {
			t.Errorf("ServiceMonitor labels %v lack release=prom", sm.GetLabels())
		}
		checkDashboardConfigMap(t, objs, "imagegate-dashboard", dashboard)
		pr := find(objs, "PrometheusRule", "imagegate")
		if pr == nil {
			t.Fatal("no PrometheusRule imagegate")
		}
		// The chart's rules are deploy/prometheus's but for the latency
		// threshold, which follows webhook.timeoutSeconds.
		got, _ := json.Marshal(pr.Object["spec"])
		want, _ := json.Marshal(rules["spec"])
		const marker = " # webhook timeoutSeconds"
		if !strings.Contains(string(got), "0.8 * 5"+marker) {
			t.Errorf("the latency alert does not follow webhook.timeoutSeconds=5:\n%s", got)
		}
		if string(got) != strings.Replace(string(want), "0.8 * 10"+marker, "0.8 * 5"+marker, 1) {
			t.Errorf("the chart's rules differ from deploy/prometheus/imagegate-rules.yaml:\n got %s\nwant %s", got, want)
		}
	})

	t.Run("kustomize overlay", func(t *testing.T) {
		objs := renderKustomize(t, filepath.Join(root, "deploy", "kustomize", "overlays", "monitoring"))
		checkServiceMonitor(t, objs, "imagegate", "imagegate")
		checkDashboardConfigMap(t, objs, "imagegate-dashboard", dashboard)
		pr := find(objs, "PrometheusRule", "imagegate")
		if pr == nil {
			t.Fatal("no PrometheusRule imagegate")
		}
		if !reflect.DeepEqual(pr.Object["spec"], rules["spec"]) {
			t.Error("the component's rules differ from deploy/prometheus/imagegate-rules.yaml")
		}
		for _, o := range objs {
			if o.GetNamespace() != "" && o.GetNamespace() != "imagegate-system" {
				t.Errorf("%s %s in namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
			}
		}
	})
}

// checkServiceMonitor: the ServiceMonitor exists, in the Service's
// namespace, and its selector picks the Service, which has a metrics port.
func checkServiceMonitor(t *testing.T, objs []*unstructured.Unstructured, name, service string) {
	t.Helper()
	sm, svc := find(objs, "ServiceMonitor", name), find(objs, "Service", service)
	if sm == nil || svc == nil {
		t.Fatalf("ServiceMonitor %s: %v, Service %s: %v", name, sm != nil, service, svc != nil)
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for k, v := range sel {
		if svc.GetLabels()[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s; Service %s has labels %v", k, v, service, svc.GetLabels())
		}
	}
	if len(sel) == 0 {
		t.Error("ServiceMonitor selects every Service")
	}
	if ns, _, _ := unstructured.NestedStringSlice(sm.Object, "spec", "namespaceSelector", "matchNames"); len(ns) != 1 || ns[0] != svc.GetNamespace() {
		t.Errorf("ServiceMonitor looks in namespaces %v, the Service is in %q", ns, svc.GetNamespace())
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	if len(eps) != 1 {
		t.Fatalf("ServiceMonitor endpoints %v", eps)
	}
	port := eps[0].(map[string]any)["port"]
	found := false
	for _, p := range ports {
		found = found || p.(map[string]any)["name"] == port
	}
	if !found {
		t.Errorf("ServiceMonitor scrapes port %v, Service %s has %v", port, service, ports)
	}
}

// checkDashboardConfigMap: the ConfigMap carries the sidecar's label and
// the dashboard as it is in deploy/grafana.
func checkDashboardConfigMap(t *testing.T, objs []*unstructured.Unstructured, name string, want map[string]any) {
	t.Helper()
	cm := find(objs, "ConfigMap", name)
	if cm == nil {
		t.Fatalf("no ConfigMap %s", name)
	}
	if cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("ConfigMap %s labels %v lack grafana_dashboard: \"1\"", name, cm.GetLabels())
	}
	data, _, _ := unstructured.NestedString(cm.Object, "data", "imagegate.json")
	var got map[string]any
	if err := json.Unmarshal([]byte(data), &got); err != nil {
		t.Fatalf("ConfigMap %s imagegate.json: %v", name, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ConfigMap %s holds another dashboard than deploy/grafana/imagegate.json", name)
	}
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}
