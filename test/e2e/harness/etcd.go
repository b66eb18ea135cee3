package harness

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

// Etcd is a single-member etcd listening on 127.0.0.1.
type Etcd struct {
	*Process
	ClientURL string
}

// StartEtcd starts etcd on free loopback ports with a temporary data
// directory (in /dev/shm when it is writable: etcd fsyncs a lot) and waits
// until it reports healthy.
func StartEtcd(t TB) *Etcd {
	t.Helper()
	bin := MustTool(t, EnvEtcd)
	logDir := t.TempDir()
	dataDir := memTempDir(t, "etcd-")
	client, peer := hostPort(FreePort(t)), hostPort(FreePort(t))
	clientURL, peerURL := "http://"+client, "http://"+peer
	p := startProcess(t, "etcd", logDir, bin, []string{
		"--name=e2e",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=e2e=" + peerURL,
		"--initial-cluster-state=new",
		"--listen-metrics-urls=",
		"--log-level=warn",
		"--logger=zap",
	}, nil)
	e := &Etcd{Process: p, ClientURL: clientURL}
	c := &http.Client{Timeout: 2 * time.Second}
	p.waitFor(t, 30*time.Second, func() error {
		resp, err := c.Get(clientURL + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /health: %s", resp.Status)
		}
		return nil
	})
	return e
}

// memTempDir is a temporary directory in /dev/shm when that is writable,
// else in the test's temp dir; it is removed in a cleanup.
func memTempDir(t TB, prefix string) string {
	t.Helper()
	if dir, err := os.MkdirTemp("/dev/shm", "imagegate-e2e-"+prefix); err == nil {
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return t.TempDir()
}
