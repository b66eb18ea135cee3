package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// kubeStrategy blocks unscanned images named blocked-*; the test later
// widens it to alerted-* and deletes it.
const kubeStrategy = `apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: kube-block}
spec:
  strategyId: 9101
  strategyName: kube-block
  clusterId: e2e-cluster
  unScanedImage: true
  ruleAction: 2
  imageName: ["blocked-*"]
  scopes: [{clusterId: e2e-cluster, allNamespace: 1}]
`

const kubeBlockedMsg = `blocked by strategy 9101 "kube-block"`

// policyWebhookName is the webhook that sends imagegate.dev objects to
// imagegate's POST /validate-policy.
const policyWebhookName = "policies.imagegate.dev"

func conditionStatus(u *unstructured.Unstructured, typ string) string {
	c := condition(u, typ)
	s, _ := c["status"].(string)
	return s
}

func condition(u *unstructured.Unstructured, typ string) map[string]any {
	list, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range list {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			return m
		}
	}
	return nil
}

// waitFor polls cond every 50 ms until it holds and returns how long that took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < timeout {
		ok, err := cond()
		if ok {
			return time.Since(start)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s (last error: %v)", what, timeout, last)
	return 0
}

// registerPolicyWebhook sends CREATE and UPDATE of imagegate.dev objects to
// url + /validate-policy and returns once the API server calls it (an
// object only imagegate refuses is refused).
func registerPolicyWebhook(t *testing.T, cfg *rest.Config, dyn dynamic.Interface, url string, caPEM []byte) {
	t.Helper()
	client, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	fail, none, timeout := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone, int32(10)
	path := url + "/validate-policy"
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "imagegate-policies"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         policyWebhookName,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &path, CABundle: caPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"imagegate.dev"}, APIVersions: []string{"*"}, Resources: []string{"*"}},
			}},
			FailurePolicy: &fail, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"},
		}},
	}
	ctx := context.Background()
	if _, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create policy webhook: %v", err)
	}
	t.Cleanup(func() {
		_ = client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), vwc.Name, metav1.DeleteOptions{})
	})
	probe := harness.DecodeYAML(t, strings.Replace(strings.Replace(kubeStrategy, "kube-block}", "probe}", 1), `"blocked-*"`, `"["`, 1))
	took := waitFor(t, 30*time.Second, "policy webhook in force", func() (bool, error) {
		_, err := dyn.Resource(harness.OpaStrategies).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), policyWebhookName), err
	})
	t.Logf("policy webhook in force after %s", took.Round(10*time.Millisecond))
}

// TestKubePolicies: imagegate serve --policy-source=kube takes its policies
// from custom resources applied to the real API server: pods are decided by
// them, a change governs the next pod within 5 s, a deletion lifts a block,
// invalid objects are refused at apply with field paths (by the CRD schema
// and by imagegate), and a policy naming an unknown attestor is marked
// Invalid in its status while the last good set stays in force.
func TestKubePolicies(t *testing.T) {
	cluster := harness.SharedCluster(t)
	ctx := context.Background()
	// kube-words writes ruleAction and allNamespace as words: the watcher
	// decodes them like the numbers (it must be Accepted, and its column
	// shows the word).
	cluster.ApplyPolicies(t, kubeStrategy, strings.NewReplacer("kube-block}", "kube-words}", "9101", "9102", "ruleAction: 2", "ruleAction: alert",
		"allNamespace: 1", "allNamespace: true", `"blocked-*"`, `"words-*"`).Replace(kubeStrategy))
	// The objects the test changes go through a client that records the
	// API server's warnings.
	cfg, warnings := harness.ConfigWithWarnings(cluster.Config)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	strategies := dyn.Resource(harness.OpaStrategies)
	policies := dyn.Resource(harness.BinarySecurityPolicies)
	t.Cleanup(func() { _ = policies.Delete(context.Background(), "kube-unknown-attestor", metav1.DeleteOptions{}) })

	factsFile := writeFile(t, t.TempDir(), "facts.yaml", facts)
	ig := harness.StartImagegate(t, "--policy-source=kube", "--kubeconfig", cluster.Kubeconfig, "--cluster-id", clusterID, "--facts", factsFile)
	harness.RegisterWebhook(t, cluster.Config, ig.URL, ig.CAPEM)
	registerPolicyWebhook(t, cluster.Config, dyn, ig.URL, ig.CAPEM)
	client := cluster.Client(t)
	ns := createNamespace(t, client, "kube-policies")
	pods := client.CoreV1().Pods(ns)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	admitted := func(image string) error {
		_, err := pods.Create(ctx, pod("p", image, nil), dryRun)
		return err
	}

	t.Run("pods decided by the resources", func(t *testing.T) {
		mustDeny(t, "pod with "+blockedImage, admitted(blockedImage), kubeBlockedMsg)
		if err := admitted(goodImage); err != nil {
			t.Fatalf("pod with %s: %v", goodImage, err)
		}
		if err := admitted(alertedImage); err != nil {
			t.Fatalf("pod with %s (not named by the strategy yet): %v", alertedImage, err)
		}
		waitFor(t, 10*time.Second, "kube-block Accepted", func() (bool, error) {
			u, err := strategies.Get(ctx, "kube-block", metav1.GetOptions{})
			return err == nil && conditionStatus(u, "Accepted") == "True" && conditionStatus(u, "Invalid") == "False", err
		})
	})

	t.Run("kubectl explain and get columns", func(t *testing.T) {
		// kubectl explain reads the published OpenAPI v3 schema.
		body, err := client.Discovery().RESTClient().Get().AbsPath("/openapi/v3/apis/imagegate.dev/v1alpha1").DoRaw(ctx)
		if err != nil {
			t.Fatalf("OpenAPI v3 of imagegate.dev/v1alpha1: %v", err)
		}
		for _, want := range []string{"What a hit does: alert (admit with a warning)", "Finding levels that hit", "every image must be signed by ALL of them"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("published schema lacks the description %q", want)
			}
		}
		// kubectl get asks for a Table: the printer columns.
		for _, name := range []string{"kube-block", "kube-words"} {
			waitFor(t, 10*time.Second, name+" Accepted", func() (bool, error) {
				u, err := strategies.Get(ctx, name, metav1.GetOptions{})
				return err == nil && conditionStatus(u, "Accepted") == "True", err
			})
		}
		tbl, err := client.Discovery().RESTClient().Get().AbsPath("/apis/imagegate.dev/v1alpha1/opastrategies").
			SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
		if err != nil {
			t.Fatalf("table: %v", err)
		}
		for _, want := range []string{`"name":"ID"`, `"name":"Action"`, `"name":"Accepted"`, `"kube-block",9101,"kube-block","2","True"`, `"kube-words",9102,"kube-block","alert","True"`} {
			if !strings.Contains(string(tbl), want) {
				t.Errorf("kubectl get table lacks %s: %s", want, tbl)
			}
		}
	})

	t.Run("changed strategy governs the next pod within 5s", func(t *testing.T) {
		patch := []byte(`{"spec":{"imageName":["blocked-*","alerted-*"]}}`)
		if _, err := strategies.Patch(ctx, "kube-block", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("patch: %v", err)
		}
		took := waitFor(t, 5*time.Second, "pod with "+alertedImage+" denied", func() (bool, error) {
			err := admitted(alertedImage)
			return err != nil && strings.Contains(err.Error(), kubeBlockedMsg), err
		})
		t.Logf("MEASURED: changed OpaStrategy governed the next pod %s after the update", took.Round(time.Millisecond))
	})

	t.Run("invalid OpaStrategy refused with a field path", func(t *testing.T) {
		tests := []struct {
			name, from, to string
			want           []string
		}{
			// The CRD schema refuses these before imagegate is asked.
			{"ruleAction outside the enum", "ruleAction: 2", "ruleAction: 7", []string{"spec.ruleAction", "Unsupported value: 7"}},
			{"riskLevel outside the enum", "ruleAction: 2", "ruleAction: 2\n  alarmDetail: {vul: {riskLevel: [severe]}}", []string{"spec.alarmDetail.vul.riskLevel[0]", "severe"}},
			{"unknown field", "ruleAction: 2", "ruleAction: 2\n  colour: red", []string{`unknown field "spec.colour"`}},
			// Only imagegate's own validation knows these.
			{"bad imageName glob", `"blocked-*"`, `"["`, []string{policyWebhookName, "spec.imageName[0]"}},
			{"label without a key", `imageName: ["blocked-*"]`, `label: [":x"]`, []string{policyWebhookName, "spec.label[0]"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				doc := strings.Replace(strings.Replace(kubeStrategy, "kube-block}", "kube-invalid}", 1), tc.from, tc.to, 1)
				u := harness.DecodeYAML(t, doc)
				_, err := strategies.Create(ctx, u, metav1.CreateOptions{FieldValidation: "Strict"})
				if err == nil {
					_ = strategies.Delete(ctx, "kube-invalid", metav1.DeleteOptions{})
					t.Fatalf("created, want refused")
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				t.Logf("refused: %v", err)
			})
		}
	})

	t.Run("unknown attestor marked Invalid; last good set stays", func(t *testing.T) {
		warnings.Take()
		bsp := harness.DecodeYAML(t, `apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: kube-unknown-attestor}
spec:
  policy: {requiredAttestors: [no-such-attestor]}
  clusters: [{clusterId: e2e-cluster}]
`)
		if _, err := policies.Create(ctx, bsp, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create: %v", err)
		}
		if ws := warnings.Take(); !hasWarning(ws, `no Attestor "no-such-attestor" exists yet`) {
			t.Errorf("warnings at create %q, want one about the unknown attestor", ws)
		}
		var got *unstructured.Unstructured
		waitFor(t, 10*time.Second, "Invalid condition", func() (bool, error) {
			u, err := policies.Get(ctx, "kube-unknown-attestor", metav1.GetOptions{})
			got = u
			return err == nil && conditionStatus(u, "Invalid") == "True", err
		})
		c := condition(got, "Invalid")
		if c["reason"] != "UnknownAttestor" || !strings.Contains(fmt.Sprint(c["message"]), `spec.policy.requiredAttestors[0]: unknown attestor "no-such-attestor"`) {
			t.Errorf("Invalid condition %v", c)
		}
		if s := conditionStatus(got, "Accepted"); s != "False" {
			t.Errorf("Accepted %q, want False", s)
		}
		waitFor(t, 10*time.Second, "kube-block SetRejected", func() (bool, error) {
			u, err := strategies.Get(ctx, "kube-block", metav1.GetOptions{})
			return err == nil && condition(u, "Accepted")["reason"] == "SetRejected", err
		})
		// The set in force is still the last good one: alerted-* stays blocked
		// and the policy (which would deny every unsigned image) is not in force.
		mustDeny(t, "pod with "+alertedImage, admitted(alertedImage), kubeBlockedMsg)
		if err := admitted(goodImage); err != nil {
			t.Fatalf("pod with %s while the set is rejected: %v", goodImage, err)
		}
		if err := policies.Delete(ctx, "kube-unknown-attestor", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "kube-block Accepted again", func() (bool, error) {
			u, err := strategies.Get(ctx, "kube-block", metav1.GetOptions{})
			return err == nil && conditionStatus(u, "Accepted") == "True", err
		})
	})

	t.Run("deleting every policy is refused", func(t *testing.T) {
		// kube-block and kube-words are the only policy objects: without
		// them the set would admit everything, so the last good set stays in
		// force. (kube-words is not needed after this.)
		for _, name := range []string{"kube-words", "kube-block"} {
			if err := strategies.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 10*time.Second, "the empty set refused", func() (bool, error) {
			return strings.Contains(ig.Tail(100), "the new policy set has no BinarySecurityPolicy and no OpaStrategy"), nil
		})
		mustDeny(t, "pod with "+blockedImage+" after every policy was deleted", admitted(blockedImage), kubeBlockedMsg)
		if _, err := strategies.Create(ctx, harness.DecodeYAML(t, kubeStrategy), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create: %v", err)
		}
		waitFor(t, 10*time.Second, "kube-block Accepted again", func() (bool, error) {
			u, err := strategies.Get(ctx, "kube-block", metav1.GetOptions{})
			return err == nil && conditionStatus(u, "Accepted") == "True", err
		})
	})

	t.Run("deleting the strategy lifts the block", func(t *testing.T) {
		// Another strategy stays, so the set is not empty.
		keep := harness.DecodeYAML(t, strings.NewReplacer("kube-block}", "kube-keep}", "strategyName: kube-block", "strategyName: kube-keep", "9101", "9102", `"blocked-*"`, `"kept-*"`, "ruleAction: 2", "ruleAction: 1").Replace(kubeStrategy))
		if _, err := strategies.Create(ctx, keep, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create: %v", err)
		}
		t.Cleanup(func() { _ = strategies.Delete(context.Background(), "kube-keep", metav1.DeleteOptions{}) })
		waitFor(t, 10*time.Second, "kube-keep Accepted", func() (bool, error) {
			u, err := strategies.Get(ctx, "kube-keep", metav1.GetOptions{})
			return err == nil && conditionStatus(u, "Accepted") == "True", err
		})
		if err := strategies.Delete(ctx, "kube-block", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, 5*time.Second, "pod with "+blockedImage+" admitted", func() (bool, error) {
			err := admitted(blockedImage)
			return err == nil, err
		})
		t.Logf("MEASURED: deleted OpaStrategy stopped governing pods %s after the delete", took.Round(time.Millisecond))
	})

	t.Run("CRD deleted: last good snapshot kept", func(t *testing.T) {
		if _, err := strategies.Create(ctx, harness.DecodeYAML(t, kubeStrategy), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create: %v", err)
		}
		waitFor(t, 5*time.Second, "block back in force", func() (bool, error) {
			err := admitted(blockedImage)
			return err != nil && strings.Contains(err.Error(), kubeBlockedMsg), err
		})
		if err := dyn.Resource(harness.CRDs).Delete(ctx, "opastrategies.imagegate.dev", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "CRD gone", func() (bool, error) {
			_, err := dyn.Resource(harness.CRDs).Get(ctx, "opastrategies.imagegate.dev", metav1.GetOptions{})
			return apierrors.IsNotFound(err), err
		})
		time.Sleep(time.Second) // room for the informers' delete events
		mustDeny(t, "pod with "+blockedImage+" after the CRD was deleted", admitted(blockedImage), kubeBlockedMsg)
		harness.ApplyCRDs(t, dyn) // leave the cluster with the CRDs for later tests
	})
}
