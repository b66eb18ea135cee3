package harness

import (
	"path/filepath"
	"time"
)

// FloorWebhook is test/load/floor running: a webhook that reads the
// AdmissionReview, decodes its images and allows it, served by imagegate's
// own webhook.Server. Through the API server it is the least a webhook can
// add to a pod creation, the baseline a benchmark holds imagegate against.
type FloorWebhook struct {
	*Process
	// URL is https://127.0.0.1:<port>; the webhook is URL + "/validate".
	URL string
	// CAPEM signed the serving certificate (for a webhook's caBundle).
	CAPEM []byte
}

// StartFloorWebhook builds test/load/floor, runs it on a free port of
// 127.0.0.1 with a serving certificate of a new CA, waits until GET /healthz
// answers and stops it in a cleanup.
func StartFloorWebhook(t TB) *FloorWebhook {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("%v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "floor")
	if err := goBuild(root, "./test/load/floor", bin); err != nil {
		t.Fatalf("%v", err)
	}
	ca := NewCA(t, "floor")
	serving := ca.ServingCert(t, "floor", nil)
	addr := hostPort(FreePort(t))
	p := startProcess(t, "floor", dir, bin, []string{"-listen", addr, "-tls-cert-file", serving.CertFile, "-tls-private-key-file", serving.KeyFile}, nil)
	f := &FloorWebhook{Process: p, URL: "https://" + addr, CAPEM: ca.CertPEM}
	c := clientTrusting(ca.CertPEM)
	p.waitFor(t, 30*time.Second, func() error { return get200(c, f.URL+"/healthz") })
	return f
}
