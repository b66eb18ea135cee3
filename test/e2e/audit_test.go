package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

var policyReportGVR = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}

// installPolicyReportCRD applies deploy/crds/wgpolicyk8s.io_policyreports.yaml
// and waits until PolicyReports are served.
func installPolicyReportCRD(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy", "crds", "wgpolicyk8s.io_policyreports.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := dyn.Resource(harness.CRDs).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("install the PolicyReport CRD: %v", err)
	}
	harness.Eventually(t, 30*time.Second, "PolicyReports to be served", func() error {
		_, err := dyn.Resource(policyReportGVR).List(ctx, metav1.ListOptions{Limit: 1})
		return err
	})
}

// TestAuditKubernetesSinks: with --audit-kube-events and
// --audit-policy-reports, a blocked pod yields a Warning Event on the pod
// (repeats aggregate into its count) and a failing result in the
// namespace's PolicyReport; an alerted pod yields a warning result.
// (TestAuditAPIServerLog checks the API server's own audit log.)
func TestAuditKubernetesSinks(t *testing.T) {
	cluster := harness.SharedCluster(t)
	dyn, err := dynamic.NewForConfig(rest.CopyConfig(cluster.Config))
	if err != nil {
		t.Fatal(err)
	}
	installPolicyReportCRD(t, dyn)
	g := startGate(t, strategies, facts, "--audit-kube-events", "--audit-policy-reports", "--audit-kubeconfig", cluster.Kubeconfig)
	ctx := context.Background()
	pods := g.client.CoreV1().Pods(g.ns)
	const repeats = 3
	for range repeats {
		_, err := pods.Create(ctx, pod("blocked", blockedImage, nil), metav1.CreateOptions{})
		mustDeny(t, "pod with "+blockedImage, err, blockedMsg)
	}
	if _, err := pods.Create(ctx, pod("alerted", alertedImage, nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("alerted pod: %v", err)
	}

	t.Run("Event on the blocked pod", func(t *testing.T) {
		harness.Eventually(t, 20*time.Second, "an aggregated Event on pod blocked", func() error {
			evs, err := g.client.CoreV1().Events(g.ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=blocked"})
			if err != nil {
				return err
			}
			for _, e := range evs.Items {
				if e.Reason == "ImageBlocked" && e.Type == corev1.EventTypeWarning && e.InvolvedObject.Kind == "Pod" &&
					strings.Contains(e.Message, blockedMsg) && e.Source.Component == "imagegate" {
					if e.Count != repeats {
						return fmt.Errorf("count %d, want %d", e.Count, repeats)
					}
					if len(evs.Items) != 1 {
						return fmt.Errorf("%d Events, want 1 aggregated", len(evs.Items))
					}
					return nil
				}
			}
			return fmt.Errorf("no ImageBlocked Event among %d", len(evs.Items))
		})
	})
	t.Run("PolicyReport in the namespace", func(t *testing.T) {
		var report *unstructured.Unstructured
		harness.Eventually(t, 20*time.Second, "the PolicyReport to hold both pods' results", func() error {
			var err error
			report, err = dyn.Resource(policyReportGVR).Namespace(g.ns).Get(ctx, "imagegate", metav1.GetOptions{})
			if err != nil {
				return err
			}
			results, _, _ := unstructured.NestedSlice(report.Object, "results")
			if len(results) != repeats+1 {
				return fmt.Errorf("%d results, want %d", len(results), repeats+1)
			}
			return nil
		})
		results, _, _ := unstructured.NestedSlice(report.Object, "results")
		want := map[string]string{"blocked": "fail", "alerted": "warn"}
		for _, r := range results {
			m := r.(map[string]any)
			res := m["resources"].([]any)[0].(map[string]any)
			name, _ := res["name"].(string)
			if w, ok := want[name]; !ok || m["result"] != w || m["source"] != "imagegate" || res["kind"] != "Pod" || res["namespace"] != g.ns {
				t.Errorf("result %v", m)
			}
			props := m["properties"].(map[string]any)
			if props["image"] == nil || props["eventId"] == nil {
				t.Errorf("result properties %v", props)
			}
		}
		if fail, _, _ := unstructured.NestedInt64(report.Object, "summary", "fail"); fail != repeats {
			t.Errorf("summary.fail %d, want %d", fail, repeats)
		}
		if warn, _, _ := unstructured.NestedInt64(report.Object, "summary", "warn"); warn != 1 {
			t.Errorf("summary.warn %d, want 1", warn)
		}
		if first := results[0].(map[string]any); first["policy"] != "strategy/9002" || first["rule"] != "e2e-alert" {
			t.Errorf("newest result %v, want the alert (strategy/9002, e2e-alert)", first)
		}
	})
}

// TestAuditAPIServerLog: the API server's own audit log carries imagegate's
// decision as an annotation of the webhook (validate.imagegate.dev/decision)
// on a denied and an admitted pod. It starts its own etcd and kube-apiserver
// with an audit policy, since the shared cluster has none.
func TestAuditAPIServerLog(t *testing.T) {
	harness.RequireE2E(t)
	dir := t.TempDir()
	policy, logPath := filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  resources: [{group: "", resources: [pods]}]
- level: None
`), 0o644); err != nil {
		t.Fatal(err)
	}
	etcd := harness.StartEtcd(t)
	api := harness.StartAPIServer(t, etcd, "--audit-policy-file="+policy, "--audit-log-path="+logPath, "--audit-log-mode=blocking")
	polDir := filepath.Join(dir, "policies")
	writeFile(t, polDir, "p.yaml", strategies)
	ig := harness.StartImagegate(t, "--policies", polDir, "--cluster-id", clusterID)
	harness.RegisterWebhook(t, api.Config, ig.URL, ig.CAPEM)
	client := api.Client(t)
	ns := createNamespace(t, client, "auditlog")
	ctx := context.Background()
	_, err := client.CoreV1().Pods(ns).Create(ctx, pod("blocked", blockedImage, nil), metav1.CreateOptions{})
	mustDeny(t, "pod with "+blockedImage, err, blockedMsg)
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod("good", "127.0.0.1:5000/plain:1", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("plain pod: %v", err)
	}
	want := map[string]string{"blocked": "denied", "good": "allowed"}
	harness.Eventually(t, 20*time.Second, "the decisions in the API server's audit log", func() error {
		b, err := os.ReadFile(logPath)
		if err != nil {
			return err
		}
		found := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			var ev struct {
				Verb        string
				ObjectRef   struct{ Namespace, Name, Resource string }
				Stage       string
				Annotations map[string]string
			}
			if line == "" || yaml.Unmarshal([]byte(line), &ev) != nil || ev.Verb != "create" || ev.ObjectRef.Namespace != ns || ev.Stage != "ResponseComplete" {
				continue
			}
			if d, ok := ev.Annotations[harness.WebhookName+"/decision"]; ok {
				found[ev.ObjectRef.Name] = d
			}
		}
		for name, d := range want {
			if found[name] != d {
				return fmt.Errorf("pod %s: decision annotation %q, want %q (found %v)", name, found[name], d, found)
			}
		}
		return nil
	})
}
