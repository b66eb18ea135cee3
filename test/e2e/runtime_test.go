package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRuntimeCompliance: pods admitted across namespaces, then (d) a scan
// ageing past --max-scan-age, (a) an image marked malicious through the
// scan API, (b) a strategy tightened, (c) the attestor's key replaced: each
// yields the PolicyReport results and Events it should, and the reverse
// change resolves them. IMAGEGATE_E2E_RUNTIME_PODS sets the pods (200;
// make e2e-runtime: 1,000).
func TestRuntimeCompliance(t *testing.T) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("IMAGEGATE_E2E_RUNTIME_PODS")); err == nil && v > 0 {
		n = v
	}
	e := newRuntimeEnv(t, 10, 10)
	dir := t.TempDir()
	ig := e.start(filepath.Join(dir, "scans.db"), filepath.Join(dir, "audit.db"))
	// Images 0-8 scanned now; image 9 not yet (its pods alert).
	for i := range 9 {
		e.scan(ig, i, time.Now())
	}
	harness.RegisterWebhook(t, harness.SharedCluster(t).Config, ig.URL, ig.CAPEM)
	start := time.Now()
	e.createPods(n)
	t.Logf("%d pods admitted across %d namespaces in %s", n, len(e.namespaces), time.Since(start).Round(time.Millisecond))
	harness.Eventually(t, 120*time.Second, "every pod decided", func() error {
		all := e.workloads(ig, "")
		mine := 0
		for _, w := range all {
			if slices.Contains(e.namespaces, w["namespace"].(string)) {
				mine++
			}
		}
		if mine != n {
			return fmt.Errorf("%d of %d workloads decided", mine, n)
		}
		return nil
	})
	t.Logf("every pod decided %s after the first was created", time.Since(start).Round(time.Millisecond))
	if v := e.workloads(ig, "action=violating"); len(v) != len(e.podsOf(9)) {
		t.Fatalf("%d violating workloads at start, want the %d of unscanned image 9", len(v), len(e.podsOf(9)))
	}
	e.expectReport("image 9 unscanned", fmt.Sprintf("strategy/%d", rtUnscanned), "warn", e.podsOf(9), false)

	t.Run("scan ageing past --max-scan-age", func(t *testing.T) {
		// Scanned (resolving the alert), 20s short of --max-scan-age.
		since := time.Now()
		e.scan(ig, 9, time.Now().Add(-rtMaxScanAge+20*time.Second))
		e.expectReport("image 9 scanned", "", "", e.podsOf(9), true)
		e.expectEvents("image 9 scanned", "RuntimeViolationResolved", e.podsOf(9), since)
		since = time.Now()
		e.expectReport("image 9 scan aged", fmt.Sprintf("strategy/%d", rtUnscanned), "warn", e.podsOf(9), false)
		e.expectEvents("image 9 scan aged", "RuntimeImageAlerted", e.podsOf(9), since)
		t.Logf("aged after %s", time.Since(since).Round(time.Millisecond))
		since = time.Now()
		e.scan(ig, 9, time.Now())
		e.expectReport("image 9 scanned again", "", "", e.podsOf(9), true)
		e.expectEvents("image 9 scanned again", "RuntimeViolationResolved", e.podsOf(9), since)
	})
	t.Run("image marked malicious through the scan API", func(t *testing.T) {
		since := time.Now()
		e.post(ig, "/api/v1/scans?format=malicious-feed", e.digests[3]+" e2e cryptominer\n")
		e.expectReport("image 3 malicious", fmt.Sprintf("strategy/%d", rtMalicious), "fail", e.podsOf(3), false)
		e.expectEvents("image 3 malicious", "RuntimeImageBlocked", e.podsOf(3), since)
		t.Logf("malicious verdict reported on %d workloads within %s", len(e.podsOf(3)), time.Since(since).Round(time.Millisecond))
		since = time.Now()
		req, _ := http.NewRequest(http.MethodDelete, ig.URL+"/api/v1/scans/malicious/"+e.digests[3], nil)
		req.Header.Set("Authorization", "Bearer rt-scan-token")
		e.do(ig, req)
		e.expectReport("image 3 cleared", "", "", e.podsOf(3), true)
		e.expectEvents("image 3 cleared", "RuntimeViolationResolved", e.podsOf(3), since)
	})
	t.Run("strategy tightened", func(t *testing.T) {
		since := time.Now()
		writeFile(t, e.policyDir, "policies.yaml", e.rtPolicies(e.signer, true))
		e.expectReport("app5 blocked", fmt.Sprintf("strategy/%d", rtTightened), "fail", e.podsOf(5), false)
		e.expectEvents("app5 blocked", "RuntimeImageBlocked", e.podsOf(5), since)
		t.Logf("policy change reported on %d workloads within %s", len(e.podsOf(5)), time.Since(since).Round(time.Millisecond))
		since = time.Now()
		writeFile(t, e.policyDir, "policies.yaml", e.rtPolicies(e.signer, false))
		e.expectReport("app5 allowed again", "", "", e.podsOf(5), true)
		e.expectEvents("app5 allowed again", "RuntimeViolationResolved", e.podsOf(5), since)
	})
	t.Run("attestor key replaced", func(t *testing.T) {
		_, other := harness.CosignGenerateKeyPair(t, filepath.Join(t.TempDir(), "other"))
		all := e.podsOf(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
		since := time.Now()
		writeFile(t, e.policyDir, "policies.yaml", e.rtPolicies(other, false))
		e.expectReport("key replaced", "attestor/"+rtAttestor, "fail", all, false)
		e.expectEvents("key replaced", "RuntimeImageUnsigned", all, since)
		t.Logf("attestor change reported on %d workloads within %s", len(all), time.Since(since).Round(time.Millisecond))
		since = time.Now()
		writeFile(t, e.policyDir, "policies.yaml", e.rtPolicies(e.signer, false))
		e.expectReport("key restored", "", "", all, true)
		e.expectEvents("key restored", "RuntimeViolationResolved", all, since)
	})
	t.Run("runtime audit events", func(t *testing.T) {
		triggers := map[string]int{}
		token := ""
		for {
			req, _ := http.NewRequest(http.MethodGet, ig.URL+"/api/v1/events?type=runtime&action=resolved&limit=1000&pageToken="+token, nil)
			req.Header.Set("Authorization", "Bearer rt-audit-token")
			var page struct {
				Events []struct {
					Type    string `json:"type"`
					Runtime struct {
						Change, Trigger string
					} `json:"runtime"`
				} `json:"events"`
				NextPageToken string `json:"nextPageToken"`
			}
			if err := json.Unmarshal(e.do(ig, req), &page); err != nil {
				t.Fatal(err)
			}
			for _, ev := range page.Events {
				if ev.Type != "runtime" || ev.Runtime.Change != "resolved" {
					t.Fatalf("event %+v in a runtime, resolved query", ev)
				}
				triggers[ev.Runtime.Trigger]++
			}
			if token = page.NextPageToken; token == "" {
				break
			}
		}
		t.Logf("resolved runtime events by trigger: %v", triggers)
		for _, want := range []string{"scan", "malicious", "policy", "attestor"} {
			if triggers[want] == 0 {
				t.Errorf("no resolved runtime event after a %s change (%v)", want, triggers)
			}
		}
	})
}

// TestRuntimeComplianceTwoReplicas: two replicas decide the same pods;
// the Lease lets one report, so each workload has one Event, not two; when
// the reporting replica stops, the other reports. --runtime-action=annotate
// marks the violating pods, and unmarks them once resolved.
func TestRuntimeComplianceTwoReplicas(t *testing.T) {
	e := newRuntimeEnv(t, 4, 2)
	dir := t.TempDir()
	scans := filepath.Join(dir, "scans.db")
	a := e.start(scans, filepath.Join(dir, "audit-a.db"), "--runtime-action", "annotate")
	b := e.start(scans, filepath.Join(dir, "audit-b.db"), "--runtime-action", "annotate")
	for i := range 4 {
		e.scan(a, i, time.Now())
	}
	e.createPods(40) // no webhook: the replicas find them running
	for _, ig := range []*harness.Imagegate{a, b} {
		harness.Eventually(t, 60*time.Second, "decided", func() error {
			n := 0
			for _, w := range e.workloads(ig, "") {
				if slices.Contains(e.namespaces, w["namespace"].(string)) {
					n++
				}
			}
			if n != 40 {
				return fmt.Errorf("%d of 40 workloads", n)
			}
			return nil
		})
	}
	since := time.Now()
	e.post(b, "/api/v1/scans?format=malicious-feed", e.digests[1]+" e2e\n")
	counts := e.expectEvents("malicious on two replicas", "RuntimeImageBlocked", e.podsOf(1), since)
	e.expectReport("malicious on two replicas", fmt.Sprintf("strategy/%d", rtMalicious), "fail", e.podsOf(1), false)
	time.Sleep(3 * time.Second) // a second reporter would have written by now
	counts = e.expectEvents("malicious on two replicas", "RuntimeImageBlocked", e.podsOf(1), since)
	for _, p := range e.podsOf(1) {
		if counts[p] != 1 {
			t.Errorf("%s: %d RuntimeImageBlocked Events, want 1", p, counts[p])
		}
	}
	evs, _ := e.client.CoreV1().Events(e.namespaces[0]).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=RuntimeImageBlocked"})
	for _, ev := range evs.Items {
		if ev.Count != 1 {
			t.Errorf("Event %s counts %d occurrences, want 1", ev.Name, ev.Count)
		}
	}
	// Both replicas know the state; only one exports the gauge.
	total := 0.0
	for _, ig := range []*harness.Imagegate{a, b} {
		if got := len(e.workloads(ig, "action=block")); got != len(e.podsOf(1)) {
			t.Errorf("replica %s: %d blocked workloads, want %d", ig.URL, got, len(e.podsOf(1)))
		}
		total += gaugeSum(t, ig, "imagegate_runtime_violating_workloads")
	}
	if total != float64(len(e.podsOf(1))) {
		t.Errorf("violating-workloads gauge summed over replicas = %v, want %d (one reporter)", total, len(e.podsOf(1)))
	}

	e.expectAnnotations("malicious on two replicas", e.podsOf(1), "block: ")

	// The reporting replica goes away: the other takes the Lease over and
	// reports the next change.
	leader, survivor := a, b
	if gaugeSum(t, b, "imagegate_runtime_violating_workloads") > 0 {
		leader, survivor = b, a
	}
	stopped := time.Now()
	leader.Stop()
	// A clean stop releases the Lease: the survivor takes it over within a
	// retry period or two, not when the Lease lapses.
	harness.Eventually(t, 10*time.Second, "the survivor to report", func() error {
		if v := gaugeSum(t, survivor, "imagegate_runtime_violating_workloads"); v != float64(len(e.podsOf(1))) {
			return fmt.Errorf("survivor's gauge %v", v)
		}
		return nil
	})
	t.Logf("the survivor took the Lease over %s after the leader was told to stop", time.Since(stopped).Round(time.Millisecond))
	since = time.Now()
	req, _ := http.NewRequest(http.MethodDelete, survivor.URL+"/api/v1/scans/malicious/"+e.digests[1], nil)
	req.Header.Set("Authorization", "Bearer rt-scan-token")
	e.do(survivor, req)
	e.expectEvents("after the leader stopped", "RuntimeViolationResolved", e.podsOf(1), since)
	e.expectReport("after the leader stopped", "", "", e.podsOf(1), true)
	e.expectAnnotations("after the leader stopped", nil, "")
	t.Logf("the survivor reported the resolution within %s", time.Since(since).Round(time.Millisecond))
}

// gaugeSum sums every series of a metric.
func gaugeSum(t *testing.T, ig *harness.Imagegate, name string) float64 {
	t.Helper()
	resp, err := http.Get(ig.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+"{") {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			sum += v
		}
	}
	return sum
}
