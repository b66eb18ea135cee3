package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
)

// TestKubeReadiness: with the API server unreachable at start, imagegate
// runs but is not ready; once it can list the policy resources it is ready
// and enforces them; when the API server goes away again it stays ready and
// keeps deciding with the last snapshot.
func TestKubeReadiness(t *testing.T) {
	cluster := harness.SharedCluster(t)
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	applyCRDs(t, dyn)
	strategies := dyn.Resource(strategyGVR)
	_ = strategies.Delete(ctx, "kube-block", metav1.DeleteOptions{})
	if _, err := strategies.Create(ctx, decodeYAML(t, kubeStrategy), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = strategies.Delete(context.Background(), "kube-block", metav1.DeleteOptions{}) })

	// The kubeconfig names a port where nothing listens yet.
	proxyAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	cfg := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters: [{name: e2e, cluster: {server: \"https://%s\", certificate-authority: %q}}]\n"+
		"users: [{name: admin, user: {client-certificate: %q, client-key: %q}}]\ncontexts: [{name: e2e, context: {cluster: e2e, user: admin}}]\ncurrent-context: e2e\n",
		proxyAddr, cluster.CA.CertFile, cluster.Admin.CertFile, cluster.Admin.KeyFile)
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := harness.NewCA(t, "imagegate-ready")
	serving := ca.ServingCert(t, "imagegate", nil)
	listen := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	cmd := exec.Command(harness.ImagegateBinary(t), "serve", "--policy-source=kube", "--kubeconfig", kubeconfig,
		"--cluster-id", clusterID, "--listen", listen, "--metrics-listen", "",
		"--tls-cert-file", serving.CertFile, "--tls-private-key-file", serving.KeyFile)
	logFile, err := os.Create(filepath.Join(dir, "imagegate.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("imagegate log:\n%s", b)
		}
	})
	ig := &harness.Imagegate{URL: "https://" + listen, CAPEM: ca.CertPEM}
	client := ig.HTTPClient()
	status := func(path string) int {
		res, err := client.Get(ig.URL + path)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	waitFor(t, 15*time.Second, "imagegate serving /healthz", func() (bool, error) { return status("/healthz") == http.StatusOK, nil })
	for i := 0; i < 10; i++ {
		if got := status("/readyz"); got == http.StatusOK {
			t.Fatalf("ready while the API server is unreachable")
		}
		time.Sleep(300 * time.Millisecond)
	}

	lb := startBalancerAt(t, proxyAddr, strings.TrimPrefix(cluster.URL, "https://"))
	took := waitFor(t, 60*time.Second, "ready once the API server is reachable", func() (bool, error) { return status("/readyz") == http.StatusOK, nil })
	t.Logf("ready %s after the API server became reachable", took.Round(10*time.Millisecond))
	if allowedBy(t, ig, "default", blockedImage) {
		t.Fatalf("%s admitted: the strategy from the API server is not in force", blockedImage)
	}

	lb.Close() // the API server is gone
	time.Sleep(2 * time.Second)
	if got := status("/readyz"); got != http.StatusOK {
		t.Errorf("/readyz %d after a disconnect, want 200 (the last snapshot stays in force)", got)
	}
	if allowedBy(t, ig, "default", blockedImage) {
		t.Errorf("%s admitted after the disconnect: the last snapshot was dropped", blockedImage)
	}
	if !allowedBy(t, ig, "default", goodImage) {
		t.Errorf("%s denied after the disconnect", goodImage)
	}
}
