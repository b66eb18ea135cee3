package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// runtimeEnv is a cluster with pods over a few signed images in a few
// namespaces, and imagegate serve --runtime-compliance replicas watching them.
type runtimeEnv struct {
	t          *testing.T
	client     kubernetes.Interface
	dyn        dynamic.Interface
	host       string
	refs       []string // image i, by digest
	digests    []string
	namespaces []string
	system     string
	pods       map[string][]string // pods per image index, as ns/name
	policyDir  string
	scanToken  string
	auditToken string
	signer     string // the public key file of the Attestor
	replicas   []*harness.Imagegate
}

const (
	rtAttestor   = "e2e-rt-signer"
	rtMalicious  = 9801
	rtUnscanned  = 9802
	rtTightened  = 9803
	rtMaxScanAge = time.Hour
)

// rtPolicies: signatures by the attestor required, malicious images
// blocked, unscanned ones alerted, and, tightened, image app5 blocked by
// name — all scoped to the test's namespaces, so other tests' pods left in
// the shared cluster are not asked about.
func (e *runtimeEnv) rtPolicies(pub string, tightened bool) string {
	ns := "[" + strings.Join(e.namespaces, ", ") + "]"
	doc := attestorYAML(e.t, rtAttestor, pub) + `---
apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: e2e-rt-signed}
spec:
  name: e2e-rt-signed
  policy: {policyMode: requireAttestor, requiredAttestors: [` + rtAttestor + `]}
  clusters:
  - {clusterId: e2e-cluster, namespaces: ` + ns + `}
  status: enabled
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: e2e-rt-malicious}
spec:
  strategyId: ` + strconv.Itoa(rtMalicious) + `
  ruleAction: 2
  maliciousImage: true
  scopes: [{clusterId: e2e-cluster, allNamespace: 0, namespaceList: ` + ns + `}]
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: e2e-rt-unscanned}
spec:
  strategyId: ` + strconv.Itoa(rtUnscanned) + `
  ruleAction: 1
  unScanedImage: true
  scopes: [{clusterId: e2e-cluster, allNamespace: 0, namespaceList: ` + ns + `}]
`
	if tightened {
		doc += `---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: e2e-rt-no-app5}
spec:
  strategyId: ` + strconv.Itoa(rtTightened) + `
  ruleAction: 2
  imageName: [rt/app5]
  scopes: [{clusterId: e2e-cluster, allNamespace: 0, namespaceList: ` + ns + `}]
`
	}
	return doc
}

func newRuntimeEnv(t *testing.T, images, namespaces int) *runtimeEnv {
	harness.RequireE2E(t)
	cluster := harness.SharedCluster(t)
	cfg := *cluster.Config
	cfg.QPS, cfg.Burst = 300, 600
	client, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &runtimeEnv{t: t, client: client, dyn: dyn, host: harness.StartRegistry(t), pods: map[string][]string{}}
	installPolicyReportCRD(t, dyn)
	key, pub := harness.CosignGenerateKeyPair(t, filepath.Join(t.TempDir(), "signer"))
	e.signer = pub
	for i := range images {
		d := harness.PushRandomImage(t, e.host, fmt.Sprintf("rt/app%d", i), "v1")
		e.digests = append(e.digests, d)
		e.refs = append(e.refs, fmt.Sprintf("%s/rt/app%d@%s", e.host, i, d))
		harness.CosignSign(t, key, e.refs[i])
	}
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	for i := range namespaces + 1 {
		name := fmt.Sprintf("rt-%s-%d", suffix, i)
		if _, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if i == namespaces {
			e.system = name // imagegate's own: the Lease is there
		} else {
			e.namespaces = append(e.namespaces, name)
		}
	}
	dir := t.TempDir()
	e.policyDir = filepath.Join(dir, "policies")
	writeFile(t, e.policyDir, "policies.yaml", e.rtPolicies(pub, false))
	e.scanToken = writeFile(t, dir, "scan-token", "rt-scan-token")
	e.auditToken = writeFile(t, dir, "audit-token", "rt-audit-token")
	return e
}

// start runs one imagegate replica sharing the scan store file.
func (e *runtimeEnv) start(scanStore, auditStore string, extra ...string) *harness.Imagegate {
	args := append([]string{"--policies", e.policyDir, "--cluster-id", clusterID, "--kubeconfig", harness.SharedCluster(e.t).WriteKubeconfig(e.t),
		"--runtime-compliance", "--namespace", e.system, "--scan-store", scanStore, "--scan-token-file", e.scanToken,
		"--audit-store", auditStore, "--audit-token-file", e.auditToken, "--max-scan-age", rtMaxScanAge.String(),
		"--policy-poll-interval", "200ms", "--runtime-kube-events-qps", "200", "--runtime-lease", "e2e-rt-" + e.system}, extra...)
	ig := harness.StartImagegate(e.t, args...)
	e.replicas = append(e.replicas, ig)
	return ig
}

// scan posts a Trivy report without findings for image i, scanned at.
func (e *runtimeEnv) scan(ig *harness.Imagegate, i int, at time.Time) {
	e.t.Helper()
	report := `{"SchemaVersion":2,"CreatedAt":"` + at.UTC().Format(time.RFC3339) + `","ArtifactName":"` + e.refs[i] + `",` +
		`"Metadata":{"RepoDigests":[]},"Results":[]}`
	e.post(ig, "/api/v1/scans", report)
}

func (e *runtimeEnv) post(ig *harness.Imagegate, path, body string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ig.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer rt-scan-token")
	e.do(ig, req)
}

func (e *runtimeEnv) do(ig *harness.Imagegate, req *http.Request) []byte {
	e.t.Helper()
	resp, err := clientOf(ig).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, b)
	}
	return b
}

// createPods creates n pods round-robin over namespaces and images.
func (e *runtimeEnv) createPods(n int) {
	e.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	var mu sync.Mutex
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				ns, img := e.namespaces[i%len(e.namespaces)], (i/len(e.namespaces))%len(e.refs)
				name := fmt.Sprintf("p%04d-app%d", i, img)
				if _, err := e.client.CoreV1().Pods(ns).Create(context.Background(), pod(name, e.refs[img], map[string]string{"app": "rt"}), metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("pod %s/%s: %w", ns, name, err)
					continue
				}
				mu.Lock()
				e.pods[strconv.Itoa(img)] = append(e.pods[strconv.Itoa(img)], ns+"/"+name)
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
}

func (e *runtimeEnv) podsOf(imgs ...int) []string {
	var out []string
	for _, i := range imgs {
		out = append(out, e.pods[strconv.Itoa(i)]...)
	}
	slices.Sort(out)
	return out
}

// workloads asks GET /api/v1/workloads with query; it pages through.
func (e *runtimeEnv) workloads(ig *harness.Imagegate, query string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	token := ""
	for {
		q := query + "&limit=1000"
		if token != "" {
			q += "&pageToken=" + token
		}
		req, _ := http.NewRequest(http.MethodGet, ig.URL+"/api/v1/workloads?"+q, nil)
		req.Header.Set("Authorization", "Bearer rt-audit-token")
		var page struct {
			Workloads     []map[string]any `json:"workloads"`
			NextPageToken string           `json:"nextPageToken"`
		}
		if err := json.Unmarshal(e.do(ig, req), &page); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, page.Workloads...)
		if token = page.NextPageToken; token == "" {
			return out
		}
	}
}

// reportResults are the PolicyReport results of every test namespace:
// "ns/pod" → the results naming it.
func (e *runtimeEnv) reportResults() (map[string][]map[string]any, error) {
	out := map[string][]map[string]any{}
	for _, ns := range e.namespaces {
		rep, err := e.dyn.Resource(policyReportGVR).Namespace(ns).Get(context.Background(), "imagegate-runtime", metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("report of %s: %w", ns, err)
		}
		results, _, _ := unstructured.NestedSlice(rep.Object, "results")
		for _, r := range results {
			m := r.(map[string]any)
			res := m["resources"].([]any)[0].(map[string]any)
			key := ns + "/" + res["name"].(string)
			out[key] = append(out[key], m)
		}
	}
	return out, nil
}

// expectReport waits until exactly the pods want have a result of policy
// with result (fail, warn); with resolved, until they have a resolved pass
// and no other result.
func (e *runtimeEnv) expectReport(what, policy, result string, want []string, resolved bool) {
	e.t.Helper()
	harness.Eventually(e.t, 90*time.Second, what+": PolicyReports", func() error {
		all, err := e.reportResults()
		if err != nil {
			return err
		}
		var got []string
		for key, rs := range all {
			for _, r := range rs {
				if r["category"] != "runtime" || r["source"] != "imagegate" {
					return fmt.Errorf("%s: result %v is not imagegate's runtime category", key, r)
				}
				if !resolved && r["policy"] == policy && r["result"] == result {
					got = append(got, key)
				}
				if resolved && r["result"] == "pass" && r["properties"].(map[string]any)["resolved"] == "true" && len(rs) == 1 && slices.Contains(want, key) {
					got = append(got, key)
				}
			}
		}
		slices.Sort(got)
		got = slices.Compact(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("%d pods with a %s result of %s (resolved %v), want %d (first: %v)", len(got), result, policy, resolved, len(want), first(got))
		}
		return nil
	})
}

func first(xs []string) []string { return xs[:min(3, len(xs))] }

// expectEvents waits until every pod of want has a runtime Event of
// reason written at or after since, and returns how many Events of that
// reason each pod has.
func (e *runtimeEnv) expectEvents(what, reason string, want []string, since time.Time) map[string]int {
	e.t.Helper()
	counts := map[string]int{}
	harness.Eventually(e.t, 90*time.Second, what+": Events "+reason, func() error {
		clear(counts)
		fresh := map[string]bool{}
		for _, ns := range e.namespaces {
			evs, err := e.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=" + reason})
			if err != nil {
				return err
			}
			for _, ev := range evs.Items {
				key := ns + "/" + ev.InvolvedObject.Name
				counts[key]++
				if !ev.LastTimestamp.Time.Before(since.Truncate(time.Second)) && ev.Source.Component == "imagegate" {
					fresh[key] = true
				}
			}
		}
		var missing []string
		for _, p := range want {
			if !fresh[p] {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d pods without a %s Event since %s (first: %v)", len(missing), len(want), reason, since.Format(time.RFC3339), first(missing))
		}
		return nil
	})
	return counts
}

// expectAnnotations waits until exactly the pods want carry the
// runtime-violation annotation, each starting with prefix.
func (e *runtimeEnv) expectAnnotations(what string, want []string, prefix string) {
	e.t.Helper()
	harness.Eventually(e.t, 60*time.Second, what+": annotations", func() error {
		var got []string
		for _, ns := range e.namespaces {
			pods, err := e.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, p := range pods.Items {
				v, ok := p.Annotations["imagegate.dev/runtime-violation"]
				if !ok {
					continue
				}
				if !strings.HasPrefix(v, prefix) {
					return fmt.Errorf("%s/%s: annotation %q, want %q…", ns, p.Name, v, prefix)
				}
				got = append(got, ns+"/"+p.Name)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("%d pods annotated, want %d (first: %v)", len(got), len(want), first(got))
		}
		return nil
	})
}
