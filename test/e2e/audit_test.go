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

var (
	crdGVR          = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	policyReportGVR = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}
)

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
	if _, err := dyn.Resource(crdGVR).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("install the PolicyReport CRD: %v", err)
	}
	waitUntil(t, "PolicyReports to be served", 30*time.Second, func() error {
		_, err := dyn.Resource(policyReportGVR).List(ctx, metav1.ListOptions{Limit: 1})
		return err
	})
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAuditKubernetesSinks: with --audit-kube-events and
// --audit-policy-reports, a blocked pod yields a Warning Event on the pod
// (repeats aggregate into its count) and a failing result in the
// namespace's PolicyReport; an alerted pod yields a warning result.
//
// The API server's own audit log (imagegate.dev/decision) is not checked:
// the shared harness starts kube-apiserver without an audit policy. The
// annotation itself is asserted on every response by the webhook tests.
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
		waitUntil(t, "an aggregated Event on pod blocked", 20*time.Second, func() error {
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
		waitUntil(t, "the PolicyReport to hold both pods' results", 20*time.Second, func() error {
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
