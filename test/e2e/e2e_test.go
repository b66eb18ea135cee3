// Package e2e holds imagegate's end-to-end tests: a real kube-apiserver
// (with etcd), the distribution registry, the cosign CLI and the imagegate
// binary, all on 127.0.0.1. They skip unless IMAGEGATE_E2E=1; run them with
// test/e2e/run.sh, which builds the tools first.
package e2e

import (
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/test/e2e/harness"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// createNamespace makes a namespace named after prefix. Nothing runs the
// namespace controller, so a deleted namespace would stay Terminating: it
// is left in place (the cluster lives only as long as the test binary).
func createNamespace(t *testing.T, client kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// writeFile writes content to dir/name, making dir if need be, and returns
// the file's path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pod(name, image string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
}

// TestAPIServerSmoke: the harness's kube-apiserver stores and serves a
// namespace and a pod, without any webhook.
func TestAPIServerSmoke(t *testing.T) {
	c := harness.SharedCluster(t)
	client := c.Client(t)
	ctx := context.Background()

	ns := createNamespace(t, client, "smoke")
	got, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get namespace: %v", err)
	}
	if got.Labels[corev1.LabelMetadataName] != ns {
		t.Errorf("namespace %s has labels %v, want %s=%s (the webhook's namespaceSelector relies on it)", ns, got.Labels, corev1.LabelMetadataName, ns)
	}
	if _, err := client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{}); err != nil {
		t.Fatalf("kube-system: %v", err)
	}

	created, err := client.CoreV1().Pods(ns).Create(ctx, pod("smoke", "127.0.0.1:5000/smoke:1.0", map[string]string{"app": "smoke"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	read, err := client.CoreV1().Pods(ns).Get(ctx, "smoke", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod: %v", err)
	}
	if read.UID != created.UID || read.Spec.Containers[0].Image != "127.0.0.1:5000/smoke:1.0" || read.Labels["app"] != "smoke" {
		t.Fatalf("read back pod %s/%s uid %s image %q labels %v; created uid %s", ns, read.Name, read.UID, read.Spec.Containers[0].Image, read.Labels, created.UID)
	}
	if read.Spec.ServiceAccountName != "" {
		t.Errorf("serviceAccountName %q: the ServiceAccount admission plugin should be off", read.Spec.ServiceAccountName)
	}
	t.Logf("pod %s/%s created and read back (uid %s, phase %q: nothing schedules it)", ns, read.Name, read.UID, read.Status.Phase)
}

// TestRegistryAndCosign: an image pushed to the local docker-registry and
// signed with the cosign CLI verifies with the signer's key and not with
// another key; an unsigned image does not verify.
func TestRegistryAndCosign(t *testing.T) {
	harness.RequireE2E(t)
	host := harness.StartRegistry(t)
	digest := harness.PushRandomImage(t, host, "e2e/app", "v1")
	ref := host + "/e2e/app@" + digest
	unsignedDigest := harness.PushRandomImage(t, host, "e2e/app", "unsigned")
	t.Logf("pushed %s and %s/e2e/app@%s", ref, host, unsignedDigest)

	dir := t.TempDir()
	key, pub := harness.CosignGenerateKeyPair(t, filepath.Join(dir, "signer"))
	_, otherPub := harness.CosignGenerateKeyPair(t, filepath.Join(dir, "other"))
	harness.CosignSign(t, key, ref)

	if code := harness.CosignVerify(t, pub, ref); code != 0 {
		t.Errorf("cosign verify with the signer's key: exit %d, want 0", code)
	}
	if code := harness.CosignVerify(t, pub, host+"/e2e/app:v1"); code != 0 {
		t.Errorf("cosign verify by tag with the signer's key: exit %d, want 0", code)
	}
	if code := harness.CosignVerify(t, otherPub, ref); code == 0 {
		t.Errorf("cosign verify with another key: exit 0, want non-zero")
	}
	if code := harness.CosignVerify(t, pub, host+"/e2e/app@"+unsignedDigest); code == 0 {
		t.Errorf("cosign verify of an unsigned image: exit 0, want non-zero")
	}
}

// TestBinaryIsStatic: the imagegate every e2e test runs is the binary the
// Dockerfile ships on distroless/static, so it must need no dynamic loader.
func TestBinaryIsStatic(t *testing.T) {
	harness.RequireE2E(t)
	f, err := elf.Open(harness.ImagegateBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("imagegate has a dynamic loader (PT_INTERP): not a static binary")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("imagegate links shared libraries: %v", libs)
	}
}
