package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
)

// TestKubeReadiness: with the API server unreachable at start, imagegate
// runs but is not ready; once it can list the policy resources it is ready
// and enforces them; when the API server goes away again it stays ready and
// keeps deciding with the last snapshot.
func TestKubeReadiness(t *testing.T) {
	cluster := harness.SharedCluster(t)
	cluster.ApplyPolicies(t, kubeStrategy)

	// The kubeconfig names a port where nothing listens yet.
	proxyAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	kubeconfig := cluster.WriteKubeconfig(t, harness.KubeconfigServer("https://"+proxyAddr))
	// Not ready without the API server: wait for /healthz alone.
	ig := harness.RunImagegate(t, []string{"--policy-source=kube", "--kubeconfig", kubeconfig, "--cluster-id", clusterID},
		harness.ReadyAt("/healthz"))
	client := ig.HTTPClient()
	status := func(path string) int {
		res, err := client.Get(ig.URL + path)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	for i := 0; i < 10; i++ {
		// 503, not a failed request: it runs and says it is not ready.
		if got := status("/readyz"); got != http.StatusServiceUnavailable {
			t.Fatalf("/readyz %d while the API server is unreachable, want 503", got)
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
