package e2e

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// servedSerial is the serial of the certificate a TLS server presents.
func servedSerial(addr string) string {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only reading the certificate
	if err != nil {
		return ""
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestKubeCertBootstrap: with --cert-bootstrap-secret and no certificate
// of its own, imagegate creates a CA and serving certificate in a Secret,
// patches the webhook configuration's empty caBundle so the real API server
// trusts it, and replaces the certificate before it expires (60 s validity,
// renewed 45 s before the end) without failing admissions.
func TestKubeCertBootstrap(t *testing.T) {
	cluster := harness.SharedCluster(t)
	ctx := context.Background()
	cluster.ApplyPolicies(t, kubeStrategy)
	client := cluster.Client(t)
	ns := createNamespace(t, client, "kube-certs")
	own := createNamespace(t, client, "kube-certs-imagegate") // imagegate's namespace holds the Secret and is exempt

	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	url := "https://" + addr + "/validate"
	fail, none, timeout := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone, int32(10)
	const vwcName, whName = "imagegate-cert-bootstrap", "certs.e2e.imagegate.dev"
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: vwcName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         whName,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url}, // no caBundle: imagegate patches it
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}},
			FailurePolicy:     &fail, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"},
		}},
	}
	vwcs := client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if _, err := vwcs.Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vwcs.Delete(context.Background(), vwcName, metav1.DeleteOptions{}) })

	dir := t.TempDir()
	// No certificate of its own: it is ready once it serves the
	// bootstrapped one.
	var first string
	harness.RunImagegate(t, []string{"--policy-source=kube", "--kubeconfig", cluster.Kubeconfig,
		"--cluster-id", clusterID, "--namespace", own,
		"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-private-key-file", filepath.Join(dir, "tls.key"),
		"--cert-bootstrap-secret", "imagegate-tls", "--cert-bootstrap-webhook", vwcName, "--cert-bootstrap-hosts", "127.0.0.1",
		"--cert-bootstrap-validity", "60s", "--cert-bootstrap-renew-before", "45s"},
		harness.ServeAt(addr), harness.OwnServingCert(),
		harness.ReadyWhen(func(*harness.Imagegate) error {
			if first = servedSerial(addr); first == "" {
				return errors.New("no TLS server at " + addr)
			}
			return nil
		}))
	sec, err := client.CoreV1().Secrets(own).Get(ctx, "imagegate-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("bootstrap Secret: %v", err)
	}
	for _, k := range []string{"ca.crt", "ca.key", "tls.crt", "tls.key"} {
		if len(sec.Data[k]) == 0 {
			t.Errorf("Secret imagegate-tls has no %s", k)
		}
	}
	got, err := vwcs.Get(ctx, vwcName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Webhooks[0].ClientConfig.CABundle) != string(sec.Data["ca.crt"]) {
		t.Fatalf("caBundle %q is not the Secret's CA", base64.StdEncoding.EncodeToString(got.Webhooks[0].ClientConfig.CABundle))
	}
	pods := client.CoreV1().Pods(ns)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	deniedByImagegate := func() (bool, error) {
		_, err := pods.Create(ctx, pod("p", blockedImage, nil), dryRun)
		return err != nil && strings.Contains(err.Error(), whName) && strings.Contains(err.Error(), kubeBlockedMsg), err
	}
	took := waitFor(t, 30*time.Second, "the API server trusts the bootstrapped certificate", deniedByImagegate)
	t.Logf("API server called imagegate over the bootstrapped certificate %s after the caBundle patch", took.Round(10*time.Millisecond))

	took = waitFor(t, 45*time.Second, "serving certificate renewed", func() (bool, error) {
		s := servedSerial(addr)
		return s != "" && s != first, nil
	})
	t.Logf("MEASURED: serving certificate replaced %s after the first was served (due 15 s after issue)", took.Round(100*time.Millisecond))
	if ok, err := deniedByImagegate(); !ok {
		t.Fatalf("after the renewal the API server's call failed or was not a denial: %v", err)
	}
}
