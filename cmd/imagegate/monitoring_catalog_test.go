package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/internal/pgtest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// What the monitoring test checks queries against: the series a real
// imagegate serve exposes, by name, with their label names and kind.

// series is one queryable series name: its labels and whether rate() and
// increase() apply to it.
type series struct {
	labels  map[string]bool
	counter bool
}

type catalog map[string]series

// targetLabels are added by the scrape, not by imagegate: job, instance and
// the Kubernetes ones a ServiceMonitor (or kubernetes_sd relabelling) sets,
// and cluster, which multi-cluster setups add as an external label. The
// dashboard's variables filter on these.
var targetLabels = []string{"cluster", "namespace", "instance", "job", "pod", "service", "endpoint", "container"}

// apiserverSeries are the kube-apiserver's admission webhook series the
// alerts use (k8s.io/apiserver/pkg/admission/metrics, the same in 1.28 to
// 1.36): the API server's own view of calls to imagegate, which is all
// there is when imagegate is down.
var apiserverSeries = map[string][]string{
	"apiserver_admission_webhook_rejection_count": {"name", "type", "operation", "error_type", "rejection_code"},
	"apiserver_admission_webhook_fail_open_count": {"name", "type"},
	"apiserver_admission_webhook_request_total":   {"name", "type", "operation", "code", "rejected"},
}

// add puts the series of one scraped family into c, histograms and
// summaries as the series Prometheus stores for them.
func (c catalog) add(mf *dto.MetricFamily) {
	labels := map[string]bool{}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = true
		}
	}
	with := func(extra ...string) map[string]bool {
		out := map[string]bool{}
		for l := range labels {
			out[l] = true
		}
		for _, l := range extra {
			out[l] = true
		}
		return out
	}
	name := mf.GetName()
	switch mf.GetType() {
	case dto.MetricType_HISTOGRAM:
		c[name+"_bucket"] = series{with("le"), true}
		c[name+"_sum"] = series{with(), true}
		c[name+"_count"] = series{with(), true}
	case dto.MetricType_SUMMARY:
		c[name] = series{with("quantile"), false}
		c[name+"_sum"] = series{with(), true}
		c[name+"_count"] = series{with(), true}
	default:
		c[name] = series{with(), mf.GetType() == dto.MetricType_COUNTER}
	}
}

// scrapeCatalog reads the text exposition at url into a catalog.
func scrapeCatalog(t *testing.T, url string) catalog {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	c := catalog{}
	for _, mf := range mfs {
		c.add(mf)
	}
	for name, labels := range apiserverSeries {
		s := series{labels: map[string]bool{}, counter: true}
		for _, l := range labels {
			s.labels[l] = true
		}
		c[name] = s
	}
	return c
}

// servedCatalog runs imagegate serve with every source of metrics the
// dashboard and the alerts use (live verification against a registry that
// is not there, digest pinning, a scan store, the audit log and a store:
// PostgreSQL when it is installed), sends it admissions of every outcome
// and a pinning request, and returns what /metrics then exposes. postgres
// says whether the PostgreSQL audit store's series are in it.
func servedCatalog(t *testing.T) (c catalog, postgres bool) {
	t.Helper()
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	if err := os.CopyFS(policies, os.DirFS("../../examples/policies")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(policies, "block.yaml"), []byte(`apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-bad}
spec: {strategyId: 1, clusterId: prod-cluster, ruleAction: block, imageName: ["bad-*"]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "audit.db")
	if pgtest.BinDir() != "" {
		pg := pgtest.Start(t)
		t.Cleanup(pg.Stop)
		store, postgres = pg.NewDatabase(t), true
	}
	cert, key := selfSignedCert(t, dir)
	listen, metrics := freePort(t), freePort(t)
	cmd := exec.Command(binary, "serve", "--policies", policies, "--cluster-id", "prod-cluster", "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--listen", listen, "--metrics-listen", metrics, "--scan-store", filepath.Join(dir, "scans.db"),
		"--audit-log", filepath.Join(dir, "audit.log"), "--audit-store", store)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	client := serveClient()
	waitReady(t, client, listen)
	// An unreachable registry: verification and pinning call it and fail
	// at once (connection refused), which is all the series need.
	const unsigned = "127.0.0.1:1/app:1"
	for _, c := range []struct {
		path, ns, image string
		allowed         bool
	}{
		{"/validate", "default", "good:1", true},
		{"/validate", "default", "bad-app:1", false},
		{"/validate", "kube-system", "bad-app:1", true},
		{"/validate", "prod", unsigned, false}, // signature required, registry unreachable: failing closed
		{"/mutate", "default", unsigned, true},
	} {
		if got := review(t, client, "https://"+listen+c.path, c.ns, c.image); got != c.allowed {
			t.Fatalf("%s %s in %s: allowed=%v, want %v\n%s", c.path, c.image, c.ns, got, c.allowed, logs.String())
		}
	}
	c = scrapeCatalog(t, "http://"+metrics+"/metrics")
	stopServe(t, cmd)
	return c, postgres
}

// review posts a pod's AdmissionReview to url and says whether it was allowed.
func review(t *testing.T, client *http.Client, url, ns, image string) bool {
	t.Helper()
	body := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"namespace":%q,"operation":"CREATE",`+
		`"object":{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":%q}]}}}}`, ns, image)
	resp, err := client.Post(url+"?timeout=5s", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), `"allowed":true`)
}
