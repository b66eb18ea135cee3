package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
)

const sharedStorePolicies = `apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: no-high-vulns}
spec:
  strategyId: 9801
  strategyName: no-high-vulns
  ruleAction: 2
  alarmDetail: {vul: {riskLevel: [high]}}
  scopes:
  - {clusterId: c1, allNamespace: 1}
  - {clusterId: c2, allNamespace: 1}
`

// review is an AdmissionReview creating pod name with one image.
func review(uid, name, image string) []byte {
	return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"` + uid + `",` +
		`"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},` +
		`"name":"` + name + `","namespace":"shop","operation":"CREATE","userInfo":{"username":"alice"},` +
		`"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"` + name + `","namespace":"shop"},` +
		`"spec":{"containers":[{"name":"c","image":"` + image + `"}]}}}}`)
}

// admitted posts a review to a replica and says whether it was allowed;
// an error is an admission lost (no answer, or not a decision).
func admitted(ig *harness.Imagegate, uid, name, image string) (bool, error) {
	resp, err := clientOf(ig).Post(ig.URL+"/validate?timeout=10s", "application/json", bytes.NewReader(review(uid, name, image)))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var out struct {
		Response struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.Response.UID != uid {
		return false, fmt.Errorf("status %d, uid %q: %v", resp.StatusCode, out.Response.UID, err)
	}
	return out.Response.Allowed, nil
}

var (
	clientsMu sync.Mutex
	clients   = map[*harness.Imagegate]*http.Client{}
)

// clientOf is one client per replica: each has its own serving CA.
func clientOf(ig *harness.Imagegate) *http.Client {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c, ok := clients[ig]; ok {
		return c
	}
	clients[ig] = ig.HTTPClient()
	return clients[ig]
}

func metric(t *testing.T, ig *harness.Imagegate, name string) float64 {
	t.Helper()
	resp, err := http.Get(ig.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return -1
}

// TestSharedPostgresStore: three serve replicas of two clusters on one
// PostgreSQL. A scan posted to one governs the next admission on all three
// within a second; the events of all three are in one imagegate events
// answer; killing the database mid-load loses no admission, the replicas
// say so (metrics, /readyz) and the held events land once it is back.
func TestSharedPostgresStore(t *testing.T) {
	harness.RequireE2E(t)
	pg := harness.StartPostgres(t)
	dir := t.TempDir()
	policyDir := filepath.Join(dir, "policies")
	writeFile(t, policyDir, "policies.yaml", sharedStorePolicies)
	scanToken := writeFile(t, dir, "scan-token", "scan-s3cret")
	var replicas []*harness.Imagegate
	for i, cluster := range []string{"c1", "c1", "c2"} {
		replicas = append(replicas, harness.StartImagegate(t, "--policies", policyDir, "--cluster-id", cluster,
			"--store", pg.URL(), "--scan-token-file", scanToken, "--policy-poll-interval", "5s"))
		t.Logf("replica %d: cluster %s, %s", i, cluster, replicas[i].URL)
	}
	digest := "sha256:" + strings.Repeat("7", 64)
	image := "registry.example.com/shop/cart@" + digest
	for i, ig := range replicas {
		if ok, err := admitted(ig, fmt.Sprint("before-", i), fmt.Sprint("before-", i), image); err != nil || !ok {
			t.Fatalf("replica %d before the scan: allowed %v, %v", i, ok, err)
		}
	}

	// A critical CVE, posted to replica 0 only.
	report := `{"SchemaVersion":2,"CreatedAt":"` + time.Now().UTC().Format(time.RFC3339) + `","ArtifactName":"` + image + `",` +
		`"Metadata":{"RepoDigests":[]},"Results":[{"Target":"t","Class":"os-pkgs","Vulnerabilities":[{"VulnerabilityID":"CVE-2024-3094","PkgName":"xz","Severity":"CRITICAL"}]}]}`
	req, _ := http.NewRequest(http.MethodPost, replicas[0].URL+"/api/v1/scans", strings.NewReader(report))
	req.Header.Set("Authorization", "Bearer scan-s3cret")
	posted := time.Now()
	resp, err := clientOf(replicas[0]).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /api/v1/scans: %s", resp.Status)
	}
	for i, ig := range replicas {
		for n := 0; ; n++ {
			ok, err := admitted(ig, fmt.Sprint("after-", i, "-", n), fmt.Sprint("after-", i), image)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if time.Since(posted) > time.Second {
				t.Fatalf("replica %d still admits the image %s after the scan was posted to replica 0", i, time.Since(posted))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("the scan governed all three replicas %s after it was posted", time.Since(posted).Round(time.Millisecond))

	// One answer holds the events of all three replicas and both clusters.
	bin := harness.ImagegateBinary(t)
	harness.Eventually(t, 10*time.Second, "events of all replicas in one answer", func() error {
		out, err := exec.Command(bin, "events", "--store", pg.URL(), "--action", "block", "-o", "json", "--limit", "1000").CombinedOutput()
		if err != nil {
			return fmt.Errorf("imagegate events: %v\n%s", err, out)
		}
		var page struct {
			Events []struct{ Name, ClusterID string }
		}
		if err := json.Unmarshal(out, &page); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, ev := range page.Events {
			seen[ev.Name+"/"+ev.ClusterID] = true
		}
		for _, want := range []string{"after-0/c1", "after-1/c1", "after-2/c2"} {
			if !seen[want] {
				return fmt.Errorf("no event %s among %v", want, seen)
			}
		}
		return nil
	})

	// Load on all three; the database killed in the middle.
	var lost, answered atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, ig := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				ok, err := admitted(ig, fmt.Sprint("load-", i, "-", n), fmt.Sprint("load-", i), image)
				if err != nil || ok {
					lost.Add(1) // no answer, or the scan forgotten
					continue
				}
				answered.Add(1)
			}
		}()
	}
	time.Sleep(time.Second)
	pg.Kill()
	killed := answered.Load()
	harness.Eventually(t, 20*time.Second, "replicas report the database away", func() error {
		for i, ig := range replicas {
			if v := metric(t, ig, "imagegate_scan_store_up"); v != 0 {
				return fmt.Errorf("replica %d: imagegate_scan_store_up %v", i, v)
			}
			if v := metric(t, ig, `imagegate_audit_sink_errors_total{sink="postgres"}`); v < 1 {
				return fmt.Errorf("replica %d: no audit sink errors yet", i)
			}
			if v := metric(t, ig, "imagegate_audit_postgres_backlog"); v < 1 {
				return fmt.Errorf("replica %d: no audit events held", i)
			}
			resp, err := clientOf(ig).Get(ig.URL + "/readyz")
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), "scan store unreachable since") {
				return fmt.Errorf("replica %d /readyz: %d %q", i, resp.StatusCode, b)
			}
		}
		return nil
	})
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if lost.Load() != 0 || answered.Load() <= killed {
		t.Fatalf("%d admissions lost; %d answered, %d of them before the kill", lost.Load(), answered.Load(), killed)
	}
	t.Logf("%d admissions answered under load, %d after the database was killed, none lost", answered.Load(), answered.Load()-killed)

	// Back: the held events land, nothing held any more.
	pg.Start(t)
	harness.Eventually(t, 20*time.Second, "held events written", func() error {
		for i, ig := range replicas {
			if v := metric(t, ig, "imagegate_audit_postgres_backlog"); v != 0 {
				return fmt.Errorf("replica %d: %v events held", i, v)
			}
			if v := metric(t, ig, "imagegate_audit_postgres_dropped_total"); v != 0 {
				return fmt.Errorf("replica %d: %v events dropped", i, v)
			}
		}
		return nil
	})
}
