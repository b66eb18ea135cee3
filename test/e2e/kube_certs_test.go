package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	admissionv1client "k8s.io/client-go/kubernetes/typed/admissionregistration/v1"
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

// certEnv is a cluster with the kube-block strategy, a namespace whose pods
// go to a webhook configuration without caBundle, and imagegate's own
// namespace, for imagegate serve with --cert-bootstrap-secret.
type certEnv struct {
	client       kubernetes.Interface
	vwcs         admissionv1client.ValidatingWebhookConfigurationInterface
	ns, own      string
	addr, dir    string
	vwcName      string
	whName       string
	deniedByGate func() (bool, error)
}

func newCertEnv(t *testing.T, prefix, vwcName string) *certEnv {
	t.Helper()
	cluster := harness.SharedCluster(t)
	ctx := context.Background()
	cluster.ApplyPolicies(t, kubeStrategy)
	client := cluster.Client(t)
	e := &certEnv{client: client, vwcs: client.AdmissionregistrationV1().ValidatingWebhookConfigurations(),
		ns: createNamespace(t, client, prefix), own: createNamespace(t, client, prefix+"-imagegate"), // imagegate's namespace holds the Secret and is exempt
		addr: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), dir: t.TempDir(), vwcName: vwcName, whName: "certs.e2e.imagegate.dev"}
	url := "https://" + e.addr + "/validate"
	fail, none, timeout := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone, int32(10)
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: vwcName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         e.whName,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url}, // no caBundle: imagegate patches it
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: e.ns}},
			FailurePolicy:     &fail, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"},
		}},
	}
	if _, err := e.vwcs.Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.vwcs.Delete(context.Background(), vwcName, metav1.DeleteOptions{}) })
	pods := client.CoreV1().Pods(e.ns)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	e.deniedByGate = func() (bool, error) {
		_, err := pods.Create(ctx, pod("p", blockedImage, nil), dryRun)
		return err != nil && strings.Contains(err.Error(), e.whName) && strings.Contains(err.Error(), kubeBlockedMsg), err
	}
	return e
}

// start runs imagegate serve with the bootstrap into the env's webhook
// configuration and Secret imagegate-tls, plus args, until the test ends. It
// has no certificate of its own: it is ready once it serves the
// bootstrapped one.
func (e *certEnv) start(t *testing.T, args ...string) {
	t.Helper()
	cluster := harness.SharedCluster(t)
	harness.RunImagegate(t, append([]string{"--policy-source=kube", "--kubeconfig", cluster.Kubeconfig,
		"--cluster-id", clusterID, "--namespace", e.own,
		"--tls-cert-file", filepath.Join(e.dir, "tls.crt"), "--tls-private-key-file", filepath.Join(e.dir, "tls.key"),
		"--cert-bootstrap-secret", "imagegate-tls", "--cert-bootstrap-webhook", e.vwcName}, args...),
		harness.ServeAt(e.addr), harness.OwnServingCert(),
		harness.ReadyWhen(func(*harness.Imagegate) error {
			if servedSerial(e.addr) == "" {
				return errors.New("no TLS server at " + e.addr)
			}
			return nil
		}))
}

// TestKubeCertBootstrap: with --cert-bootstrap-secret and no certificate
// of its own, imagegate creates a CA and serving certificate in a Secret,
// patches the webhook configuration's empty caBundle so the real API server
// trusts it, and replaces the certificate before it expires (60 s validity,
// renewed 45 s before the end) without failing admissions.
func TestKubeCertBootstrap(t *testing.T) {
	ctx := context.Background()
	e := newCertEnv(t, "kube-certs", "imagegate-cert-bootstrap")
	// The digest pinning webhook's configuration gets the CA too.
	mwcs := e.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mutate, fail, none, timeout := "https://"+e.addr+"/mutate", admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone, int32(10)
	if _, err := mwcs.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: e.vwcName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "mutate-" + e.whName, ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &mutate},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: e.ns}},
			FailurePolicy:     &fail, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mwcs.Delete(context.Background(), e.vwcName, metav1.DeleteOptions{}) })
	e.start(t, "--cert-bootstrap-hosts", "127.0.0.1", "--cert-bootstrap-validity", "60s", "--cert-bootstrap-renew-before", "45s",
		"--cert-bootstrap-mutating-webhook", e.vwcName)
	first := servedSerial(e.addr)
	sec, err := e.client.CoreV1().Secrets(e.own).Get(ctx, "imagegate-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("bootstrap Secret: %v", err)
	}
	for _, k := range []string{"ca.crt", "ca.key", "tls.crt", "tls.key"} {
		if len(sec.Data[k]) == 0 {
			t.Errorf("Secret imagegate-tls has no %s", k)
		}
	}
	got, err := e.vwcs.Get(ctx, e.vwcName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Webhooks[0].ClientConfig.CABundle) != string(sec.Data["ca.crt"]) {
		t.Fatalf("caBundle %q is not the Secret's CA", base64.StdEncoding.EncodeToString(got.Webhooks[0].ClientConfig.CABundle))
	}
	mwc, err := mwcs.Get(ctx, e.vwcName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(mwc.Webhooks[0].ClientConfig.CABundle) != string(sec.Data["ca.crt"]) {
		t.Fatalf("mutating caBundle %q is not the Secret's CA", base64.StdEncoding.EncodeToString(mwc.Webhooks[0].ClientConfig.CABundle))
	}
	took := waitFor(t, 30*time.Second, "the API server trusts the bootstrapped certificate", e.deniedByGate)
	t.Logf("API server called imagegate over the bootstrapped certificate %s after the caBundle patch", took.Round(10*time.Millisecond))

	took = waitFor(t, 45*time.Second, "serving certificate renewed", func() (bool, error) {
		s := servedSerial(e.addr)
		return s != "" && s != first, nil
	})
	t.Logf("MEASURED: serving certificate replaced %s after the first was served (due 15 s after issue)", took.Round(100*time.Millisecond))
	if ok, err := e.deniedByGate(); !ok {
		t.Fatalf("after the renewal the API server's call failed or was not a denial: %v", err)
	}
}

// TestKubeCertBootstrapReplaces: a Secret left by an earlier install, with
// a CA near its end (the harness CA: 24 h left, inside the 25 h
// renew-before) and a serving certificate for other names, is repaired in
// place: a new CA and certificate in the same Secret, the old CA kept after
// the new one in ca.crt and in the patched caBundle (so replicas still
// serving the old certificate stay trusted), and the real API server calls
// imagegate over the new certificate.
func TestKubeCertBootstrapReplaces(t *testing.T) {
	ctx := context.Background()
	e := newCertEnv(t, "kube-certs-replace", "imagegate-cert-replace")
	oldCA := harness.NewCA(t, "old-imagegate")
	oldServing := oldCA.ServingCert(t, "old-imagegate", nil, "imagegate.old.svc")
	if _, err := e.client.CoreV1().Secrets(e.own).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "imagegate-tls"},
		Data:       map[string][]byte{"ca.crt": oldCA.CertPEM, "ca.key": mustRead(t, oldCA.KeyFile), "tls.crt": oldServing.CertPEM, "tls.key": oldServing.KeyPEM},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The earlier install had patched its CA in.
	vwc, err := e.vwcs.Get(ctx, e.vwcName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vwc.Webhooks[0].ClientConfig.CABundle = oldCA.CertPEM
	if _, err := e.vwcs.Update(ctx, vwc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.start(t, "--cert-bootstrap-hosts", "127.0.0.1,imagegate.new.svc", "--cert-bootstrap-validity", "48h", "--cert-bootstrap-renew-before", "25h")

	waitFor(t, 30*time.Second, "the API server trusts the replaced certificate", e.deniedByGate)
	sec, err := e.client.CoreV1().Secrets(e.own).Get(ctx, "imagegate-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cas := pemCertificates(t, sec.Data["ca.crt"])
	if len(cas) != 2 || string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cas[1].Raw})) != string(oldCA.CertPEM) || cas[0].Equal(cas[1]) {
		t.Fatalf("ca.crt holds %d certificates; want the new CA, then the old one", len(cas))
	}
	got, err := e.vwcs.Get(ctx, e.vwcName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Webhooks[0].ClientConfig.CABundle) != string(sec.Data["ca.crt"]) {
		t.Fatal("caBundle is not the Secret's new ca.crt")
	}
	newCA := x509.NewCertPool()
	newCA.AddCert(cas[0])
	served := servedCert(t, e.addr)
	for _, h := range []string{"127.0.0.1", "imagegate.new.svc"} {
		if _, err := served.Verify(x509.VerifyOptions{DNSName: h, Roots: newCA}); err != nil {
			t.Errorf("served certificate for %s, against the new CA: %v", h, err)
		}
	}
	bundle := x509.NewCertPool()
	bundle.AppendCertsFromPEM(got.Webhooks[0].ClientConfig.CABundle)
	old := pemCertificates(t, oldServing.CertPEM)[0]
	if _, err := old.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: bundle}); err != nil {
		t.Errorf("a replica still serving the old certificate is not trusted by the new caBundle: %v", err)
	}
}

// servedCert is the certificate a TLS server presents.
func servedCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only reading the certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func pemCertificates(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return out
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
