package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	// WebhookConfigName is the name of the ValidatingWebhookConfiguration.
	WebhookConfigName = "imagegate"
	// WebhookName is the name of imagegate's webhook in it.
	WebhookName = "validate.imagegate.dev"
	// probeLabel marks the probe pods that only the probe webhook sees.
	probeLabel = "e2e.imagegate.dev/probe"
)

// WebhookRules are the resources imagegate validates, on CREATE and UPDATE.
func WebhookRules() []admissionregistrationv1.RuleWithOperations {
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	scope := admissionregistrationv1.NamespacedScope
	rule := func(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{Operations: ops, Rule: admissionregistrationv1.Rule{
			APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources, Scope: &scope,
		}}
	}
	return []admissionregistrationv1.RuleWithOperations{
		rule("", "pods", "pods/ephemeralcontainers", "replicationcontrollers"),
		rule("apps", "deployments", "replicasets", "statefulsets", "daemonsets"),
		rule("batch", "jobs", "cronjobs"),
	}
}

// RegisterWebhook creates the ValidatingWebhookConfiguration "imagegate"
// that sends CREATE and UPDATE of pods, pods/ephemeralcontainers and the
// pod-creating workloads, in every namespace but kube-system, to
// url + "/validate" (trusting caPEM), failurePolicy Fail, sideEffects None,
// timeoutSeconds 10, AdmissionReview v1.
//
// The API server picks configuration changes up a moment later, so it
// returns only once the configuration is in force: the configuration also
// holds a probe webhook, unique to this call, that only sees pods labelled
// with its nonce in kube-system and calls imagegate's /healthz (which is not
// an admission endpoint, so the call fails); dry-run creates of such a pod
// are repeated until they fail naming the probe webhook. That also proves
// the API server can reach imagegate over TLS with caPEM.
//
// The cleanup deletes the configuration and waits until the API server no
// longer calls the probe webhook, so the next test starts without it.
func RegisterWebhook(t TB, cfg *rest.Config, url string, caPEM []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	return RegisterWebhookSelecting(t, cfg, url, caPEM, &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: []string{metav1.NamespaceSystem},
	}}})
}

// RegisterWebhookSelecting is RegisterWebhook for the namespaces sel
// selects instead of every namespace but kube-system (a side-by-side
// benchmark leaves the other webhook's namespaces to it).
func RegisterWebhookSelecting(t TB, cfg *rest.Config, url string, caPEM []byte, sel *metav1.LabelSelector) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	return RegisterWebhookNamed(t, cfg, WebhookConfigName, url, caPEM, sel)
}

// RegisterWebhookNamed is RegisterWebhookSelecting under another
// configuration name, for a second webhook beside imagegate's (a
// benchmark's baseline).
func RegisterWebhookNamed(t TB, cfg *rest.Config, configName, url string, caPEM []byte, sel *metav1.LabelSelector) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	client, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	nonce := randomHex(t, 6)
	probeName := "probe-" + nonce + ".e2e.imagegate.dev"
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout, probeTimeout := int32(10), int32(5)
	validate, healthz := url+"/validate", url+"/healthz"
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: configName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    WebhookName,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &validate, CABundle: caPEM},
			Rules:                   WebhookRules(),
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector:       sel,
		}, {
			Name:         probeName,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &healthz, CABundle: caPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &probeTimeout,
			AdmissionReviewVersions: []string{"v1"},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{probeLabel: nonce}},
		}},
	}
	ctx := context.Background()
	created, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ValidatingWebhookConfiguration %s: %v", configName, err)
	}
	t.Cleanup(func() {
		err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), configName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Logf("delete ValidatingWebhookConfiguration %s: %v", configName, err)
			return
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if err := probe(client, nonce); err == nil || !strings.Contains(err.Error(), probeName) {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("the API server still calls webhook %s 30s after its configuration was deleted", probeName)
	})

	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for {
		err := probe(client, nonce)
		switch {
		case err != nil && strings.Contains(err.Error(), probeName):
			if strings.Contains(err.Error(), "x509") || strings.Contains(err.Error(), "tls:") {
				t.Fatalf("the API server cannot talk TLS to imagegate at %s: %v", url, err)
			}
			t.Logf("webhook configuration %s in force after %s (probe: %v)", configName, time.Since(start).Round(10*time.Millisecond), err)
			return created
		case time.Now().After(deadline):
			t.Fatalf("webhook configuration %s not in force after 30s; last probe: %v", configName, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// probe dry-run creates a pod in kube-system labelled for the probe webhook
// with nonce.
func probe(client kubernetes.Interface, nonce string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "imagegate-probe-", Namespace: metav1.NamespaceSystem, Labels: map[string]string{probeLabel: nonce}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "imagegate-e2e-probe:" + nonce}}},
	}
	_, err := client.CoreV1().Pods(metav1.NamespaceSystem).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

func randomHex(t TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// WarningRecorder is a rest.WarningHandler that keeps the warnings the API
// server sends (admission webhooks' warnings among them).
type WarningRecorder struct {
	ch chan string
}

// NewWarningRecorder returns an empty recorder.
func NewWarningRecorder() *WarningRecorder { return &WarningRecorder{ch: make(chan string, 1024)} }

// HandleWarningHeader implements rest.WarningHandler.
func (w *WarningRecorder) HandleWarningHeader(code int, agent string, text string) {
	if code != 299 || text == "" {
		return
	}
	select {
	case w.ch <- text:
	default:
	}
}

// Take returns the warnings recorded since the last call.
func (w *WarningRecorder) Take() []string {
	var out []string
	for {
		select {
		case s := <-w.ch:
			out = append(out, s)
		default:
			return out
		}
	}
}

// ConfigWithWarnings returns a copy of cfg whose clients record warnings in
// the returned recorder instead of logging them.
func ConfigWithWarnings(cfg *rest.Config) (*rest.Config, *WarningRecorder) {
	c := rest.CopyConfig(cfg)
	w := NewWarningRecorder()
	c.WarningHandler = w
	return c, w
}
