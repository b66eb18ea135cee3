package harness

import (
	"os"
	"sync"
	"testing"
)

// EnvE2E must be "1" for the end-to-end tests to run; without it they skip,
// so that a plain `go test ./...` in this module is quick.
const EnvE2E = "IMAGEGATE_E2E"

// RequireE2E skips the test unless IMAGEGATE_E2E=1.
func RequireE2E(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvE2E) != "1" {
		t.Skipf("end-to-end test: set %s=1 (test/e2e/run.sh builds the tools and does)", EnvE2E)
	}
}

// Cluster is an etcd and a kube-apiserver using it.
type Cluster struct {
	Etcd *Etcd
	*APIServer
}

// StartCluster starts etcd and kube-apiserver for t.
func StartCluster(t TB) *Cluster {
	t.Helper()
	etcd := StartEtcd(t)
	return &Cluster{Etcd: etcd, APIServer: StartAPIServer(t, etcd)}
}

// shared holds the fixtures that live as long as the test binary: they are
// started by the first test that asks and stopped by Main.
var shared = struct {
	owner *Owner

	clusterOnce sync.Once
	cluster     *Cluster
	clusterErr  error

	imagegateOnce sync.Once
	imagegate     string
	imagegateErr  error
}{owner: NewOwner("shared fixtures")}

// Main runs the tests and then stops the shared fixtures, showing their
// logs when a test failed. Use it as TestMain: os.Exit(harness.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if code != 0 {
		shared.owner.SetFailed()
	}
	shared.owner.Close()
	return code
}

// SharedCluster returns the package's cluster, starting it on first use
// (etcd and kube-apiserver take 10-20 seconds to start). Tests using it must
// leave it as they found it: use their own namespaces, and remove
// cluster-scoped objects such as webhook configurations. It needs Main as
// TestMain.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	RequireE2E(t)
	shared.clusterOnce.Do(func() {
		shared.clusterErr = shared.owner.Run(func() { shared.cluster = StartCluster(shared.owner) })
	})
	if shared.clusterErr != nil {
		t.Fatalf("shared cluster: %v", shared.clusterErr)
	}
	return shared.cluster
}
