package e2e

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// pinOptOutLabel turns digest pinning off for a namespace (the shipped
// MutatingWebhookConfiguration's namespaceSelector).
const pinOptOutLabel = "imagegate.dev/pin-digests"

// pinCondition is the shipped mutating webhook's matchCondition: pods whose
// images all name a digest are not sent to it (TestDeployManifests checks
// the chart and kustomize base carry the same expression).
const pinCondition = "object.spec.containers.exists(c, !c.image.contains('@')) || " +
	"(has(object.spec.initContainers) && object.spec.initContainers.exists(c, !c.image.contains('@'))) || " +
	"(has(object.spec.ephemeralContainers) && object.spec.ephemeralContainers.exists(c, !c.image.contains('@')))"

// registerPinning creates the MutatingWebhookConfiguration "imagegate" as
// deploy/ ships it (Pods and their ephemeral containers, CREATE and
// UPDATE, reinvocationPolicy IfNeeded, kube-system and namespaces labelled
// imagegate.dev/pin-digests=false left out) calling url + "/mutate".
func registerPinning(t *testing.T, client kubernetes.Interface, url string, caPEM []byte) {
	t.Helper()
	fail, none, ifNeeded := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.IfNeededReinvocationPolicy
	scope, timeout, mutate := admissionregistrationv1.NamespacedScope, int32(10), url+"/mutate"
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: harness.WebhookConfigName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "mutate.imagegate.dev",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &mutate, CABundle: caPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods", "pods/ephemeralcontainers"}, Scope: &scope},
			}},
			FailurePolicy: &fail, SideEffects: &none, TimeoutSeconds: &timeout, ReinvocationPolicy: &ifNeeded,
			AdmissionReviewVersions: []string{"v1"},
			MatchConditions:         []admissionregistrationv1.MatchCondition{{Name: "names-an-image-by-tag", Expression: pinCondition}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: []string{metav1.NamespaceSystem}},
				{Key: pinOptOutLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"false"}},
			}},
		}},
	}
	mwcs := client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := mwcs.Create(context.Background(), mwc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create MutatingWebhookConfiguration: %v", err)
	}
	t.Cleanup(func() {
		if err := mwcs.Delete(context.Background(), mwc.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Logf("delete MutatingWebhookConfiguration: %v", err)
		}
	})
}

// TestDigestPinning: with the mutating webhook, a pod by tag is stored by
// the digest of the signed image its tag named at admission; once the tag
// moves to an unsigned image, the next pod by that tag is refused, at once
// (the validating webhook's 30 s tag cache plays no part: it verifies the
// pinned digest). Controllers' templates and opted-out namespaces keep
// their tags; an ephemeral container added by tag is pinned too.
func TestDigestPinning(t *testing.T) {
	cluster := harness.SharedCluster(t)
	ctx := context.Background()
	host := harness.StartRegistry(t)
	tagRef := host + "/pin/app:v1"
	signed := harness.PushRandomImage(t, host, "pin/app", "v1")
	key, pub := harness.CosignGenerateKeyPair(t, filepath.Join(t.TempDir(), "ci"))
	harness.CosignSign(t, key, host+"/pin/app@"+signed)

	cluster.ApplyPolicies(t, attestorYAML(t, "e2e-pin-ci", pub), `apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: e2e-pin-signed}
spec:
  name: e2e-pin-signed
  policy:
    policyMode: requireAttestor
    requiredAttestors: [e2e-pin-ci]
  clusters:
  - clusterId: e2e-cluster
  status: enabled
`)
	ig := harness.StartImagegate(t, "--policy-source=kube", "--kubeconfig", cluster.Kubeconfig, "--cluster-id", clusterID)
	client := cluster.Client(t)
	registerPinning(t, client, ig.URL, ig.CAPEM)
	harness.RegisterWebhook(t, cluster.Config, ig.URL, ig.CAPEM)
	ns := createNamespace(t, client, "pinning")
	pods := client.CoreV1().Pods(ns)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

	// The API server picks the mutating configuration up a moment after
	// it is created (the validating one's probe does not tell): dry runs
	// return the mutated pod.
	start := time.Now()
	waitFor(t, 30*time.Second, "mutating webhook in force", func() (bool, error) {
		p, err := pods.Create(ctx, pod("probe", tagRef, nil), dryRun)
		return err == nil && p.Spec.Containers[0].Image != tagRef, nil
	})
	t.Logf("mutating webhook in force after %s", time.Since(start).Round(10*time.Millisecond))

	want := tagRef + "@" + signed
	t.Run("pod by tag is stored by the signed digest", func(t *testing.T) {
		p := pod("by-tag", tagRef, nil)
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: tagRef}}
		created, err := pods.Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("pod by tag: %v", err)
		}
		stored, err := pods.Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := stored.Spec.Containers[0].Image; got != want {
			t.Errorf("stored image %q, want %q", got, want)
		}
		if got := stored.Spec.InitContainers[0].Image; got != want {
			t.Errorf("stored init container image %q, want %q", got, want)
		}
	})
	t.Run("pod by digest is not sent to the mutating webhook", func(t *testing.T) {
		calls := func() float64 {
			body := getBody(t, http.DefaultClient, ig.MetricsURL+"/metrics")
			n := 0.0
			for _, line := range strings.Split(body, "\n") {
				if series, v, ok := strings.Cut(line, " "); ok && strings.HasPrefix(series, "imagegate_mutation_requests_total{") {
					f, _ := strconv.ParseFloat(v, 64)
					n += f
				}
			}
			return n
		}
		before := calls()
		if _, err := pods.Create(ctx, pod("by-digest", want, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod by digest: %v", err)
		}
		if after := calls(); after != before {
			t.Errorf("the mutating webhook was called %v times for a pod by digest, want 0", after-before)
		}
		if _, err := pods.Create(ctx, pod("by-tag-again", tagRef, nil), dryRun); err != nil {
			t.Fatalf("pod by tag: %v", err)
		}
		if after := calls(); after != before+1 {
			t.Errorf("the mutating webhook was called %v times for a pod by tag, want 1", after-before)
		}
	})
	t.Run("ephemeral container by tag is pinned", func(t *testing.T) {
		stored, err := pods.Get(ctx, "by-tag", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stored.Spec.EphemeralContainers = append(stored.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: tagRef, TerminationMessagePolicy: corev1.TerminationMessageReadFile, ImagePullPolicy: corev1.PullIfNotPresent}})
		updated, err := pods.UpdateEphemeralContainers(ctx, stored.Name, stored, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("adding an ephemeral container: %v", err)
		}
		if got := updated.Spec.EphemeralContainers[0].Image; got != want {
			t.Errorf("ephemeral container image %q, want %q", got, want)
		}
	})
	t.Run("Deployment template keeps its tag", func(t *testing.T) {
		d, err := client.AppsV1().Deployments(ns).Create(ctx, deployment("web", tagRef, nil), dryRun)
		if err != nil {
			t.Fatalf("deployment by tag: %v", err)
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; got != tagRef {
			t.Errorf("deployment template image %q, want %q as written", got, tagRef)
		}
	})
	optedOut := ""
	t.Run("opted-out namespace keeps the tag", func(t *testing.T) {
		out, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			GenerateName: "pinning-off-", Labels: map[string]string{pinOptOutLabel: "false"}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		optedOut = out.Name
		p, err := client.CoreV1().Pods(out.Name).Create(ctx, pod("by-tag", tagRef, nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("pod by tag in a namespace without pinning: %v", err)
		}
		if got := p.Spec.Containers[0].Image; got != tagRef {
			t.Errorf("image %q in a namespace labelled %s=false, want %q", got, pinOptOutLabel, tagRef)
		}
	})

	// The tag moves to an unsigned image.
	unsigned := harness.PushRandomImage(t, host, "pin/app", "v1")
	if unsigned == signed {
		t.Fatal("the push did not move the tag")
	}
	t.Run("after the tag moved, the next pod by tag is refused", func(t *testing.T) {
		start := time.Now()
		_, err := pods.Create(ctx, pod("moved", tagRef, nil), metav1.CreateOptions{})
		mustDeny(t, "pod by the moved tag", err, tagRef+"@"+unsigned, `attestor "e2e-pin-ci"`)
		t.Logf("refused %s after the tag moved", time.Since(start).Round(time.Millisecond))
	})
	if optedOut != "" {
		// What pinning closes: without it, the validating webhook decides
		// the tag by the digest it resolved moments ago (cached 30 s), while
		// the kubelet would pull the unsigned image the tag names now.
		_, err := client.CoreV1().Pods(optedOut).Create(ctx, pod("moved", tagRef, nil), dryRun)
		t.Logf("without pinning, a pod by the moved tag right after: %s", errString(err))
	}
	t.Run("the pod pinned before still names the signed digest", func(t *testing.T) {
		stored, err := pods.Get(ctx, "by-tag", metav1.GetOptions{})
		if err != nil || stored.Spec.Containers[0].Image != want {
			t.Errorf("stored pod: %v %v", err, stored)
		}
	})
	res, err := http.Get(ig.MetricsURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(body), `imagegate_mutation_requests_total{result="patched"}`) {
		t.Errorf("no patched pod counted in imagegate_mutation_requests_total")
	}
}
