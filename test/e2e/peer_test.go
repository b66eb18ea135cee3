package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// envPeer must be "1" for TestPeerPolicyController (make bench-peer).
const envPeer = "IMAGEGATE_E2E_PEER"

// benchLabel selects a side's namespace in the side-by-side benchmark.
const benchLabel = "e2e.imagegate.dev/bench"

var clusterImagePolicies = schema.GroupVersionResource{Group: "policy.sigstore.dev", Version: "v1beta1", Resource: "clusterimagepolicies"}

// TestPeerPolicyController runs imagegate and sigstore policy-controller
// side by side against one kube-apiserver, one registry (behind a counting
// proxy that can add latency) and the same images signed by one cosign key,
// each webhook selecting its own namespace, and measures pod creation
// through the API server: cold (an image the webhook has not seen) and
// warm (the same image again), alternating between the sides, with the
// registry requests each admission made. A namespace no webhook selects
// gives the API server's own cost; a second one, what the measurement
// itself scatters; a webhook that allows everything (test/load/floor), the
// least any webhook adds. Both must refuse an unsigned image.
//
// Not part of make test: make bench-peer builds policy-controller
// (scripts/peer-tools.sh) and runs it. PEER_COLD_IMAGES, PEER_WARM_PODS
// and PEER_REGISTRY_DELAY (a Go duration per registry request) size it;
// PEER_IMAGEGATE_FLAGS adds flags to imagegate serve and PEER_IMAGEGATE_ENV
// variables to its environment; PEER_OUT names a file
// for the markdown table (every sample goes beside it, as CSV).
func TestPeerPolicyController(t *testing.T) {
	if os.Getenv(envPeer) != "1" {
		t.Skipf("side-by-side benchmark: make bench-peer runs it (%s=1)", envPeer)
	}
	harness.RequireE2E(t)
	coldN, warmN := envInt(t, "PEER_COLD_IMAGES", 30), envInt(t, "PEER_WARM_PODS", 1000)
	delay := envDuration(t, "PEER_REGISTRY_DELAY", 0)
	ctx := context.Background()

	etcd := harness.StartEtcd(t)
	cluster := &harness.Cluster{Etcd: etcd, APIServer: harness.StartAPIServer(t, etcd, "--enable-aggregator-routing=true")}
	client := cluster.Client(t)
	reg := newCountingProxy(t, harness.StartRegistry(t), delay)

	dir := t.TempDir()
	key, pub := harness.CosignGenerateKeyPair(t, filepath.Join(dir, "ci"))
	// images[0] brings each side's first admission (connections, the
	// policy) behind it; images[1:coldN+1] are cold once per side by
	// digest, the rest by tag (a tag is resolved at every admission).
	images := make([]string, 2*coldN+1)
	tags := make([]string, len(images))
	for i := range images {
		repo := fmt.Sprintf("peer/app%d", i)
		d := harness.PushRandomImage(t, reg.host, repo, "v1")
		images[i], tags[i] = reg.host+"/"+repo+"@"+d, reg.host+"/"+repo+":v1"
		harness.CosignSign(t, key, images[i])
	}
	unsigned := reg.host + "/peer/unsigned@" + harness.PushRandomImage(t, reg.host, "peer/unsigned", "v1")

	// imagegate: both its webhooks, as shipped, on its namespace only.
	cluster.ApplyPolicies(t, attestorYAML(t, "peer-ci", pub), `apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: peer-signed}
spec:
  name: peer-signed
  policy:
    policyMode: requireAttestor
    requiredAttestors: [peer-ci]
  clusters:
  - clusterId: e2e-cluster
  status: enabled
`)
	// The runtime settings of the shipped Deployment (deploy/kustomize/base).
	// PEER_IMAGEGATE_FLAGS adds flags (e.g. --http2=false) to compare
	// settings run against run.
	args := append([]string{"--policy-source=kube", "--kubeconfig", cluster.Kubeconfig, "--cluster-id", clusterID},
		strings.Fields(os.Getenv("PEER_IMAGEGATE_FLAGS"))...)
	// PEER_IMAGEGATE_ENV (NAME=value ...) comes after the shipped settings.
	env := append([]string{"GOGC=400", "GOMEMLIMIT=128MiB"}, strings.Fields(os.Getenv("PEER_IMAGEGATE_ENV"))...)
	ig := harness.RunImagegate(t, args, harness.Env(env...))
	nsIG := labelledNamespace(t, client, "imagegate", map[string]string{benchLabel: "imagegate"})
	nsPC := labelledNamespace(t, client, "policy-controller", map[string]string{harness.PolicyControllerInclude: "true", pinOptOutLabel: "false"})
	nsNone := labelledNamespace(t, client, "none", map[string]string{pinOptOutLabel: "false"})
	nsControl := labelledNamespace(t, client, "control", map[string]string{pinOptOutLabel: "false"})
	// policy-controller first: its readiness probe creates pods by tag,
	// which imagegate's mutating webhook would try to resolve.
	harness.StartPolicyController(t, cluster)
	applyClusterImagePolicy(t, cluster, pub)
	registerPinning(t, client, ig.URL, ig.CAPEM)
	harness.RegisterWebhookSelecting(t, cluster.Config, ig.URL, ig.CAPEM, &metav1.LabelSelector{MatchLabels: map[string]string{benchLabel: "imagegate"}})
	// The least a webhook can add here: one that allows everything.
	floor := harness.StartFloorWebhook(t)
	nsFloor := labelledNamespace(t, client, "floor", map[string]string{benchLabel: "floor", pinOptOutLabel: "false"})
	harness.RegisterWebhookNamed(t, cluster.Config, "floor", floor.URL, floor.CAPEM, &metav1.LabelSelector{MatchLabels: map[string]string{benchLabel: "floor"}})

	sides := []*peerSide{
		{name: "imagegate", ns: nsIG, pods: client.CoreV1().Pods(nsIG)},
		{name: "policy-controller " + os.Getenv("POLICY_CONTROLLER_VERSION"), ns: nsPC, pods: client.CoreV1().Pods(nsPC)},
		{name: "floor webhook (allows all)", ns: nsFloor, pods: client.CoreV1().Pods(nsFloor)},
		// A second namespace no webhook selects: what it "adds" over the
		// first is the measurement's own noise (the API server and etcd).
		{name: "no webhook (control)", ns: nsControl, pods: client.CoreV1().Pods(nsControl)},
		{name: "no webhook (API server alone)", ns: nsNone, pods: client.CoreV1().Pods(nsNone)},
	}
	for _, s := range sides[:2] {
		// The first pod waits until the side enforces its policy.
		waitFor(t, 60*time.Second, s.name+" admits a signed image", func() (bool, error) {
			_, err := s.pods.Create(ctx, pod("first", images[0], nil), metav1.CreateOptions{})
			return err == nil, nil
		})
		_, err := s.pods.Create(ctx, pod("unsigned", unsigned, nil), metav1.CreateOptions{})
		if err == nil {
			t.Fatalf("%s admitted an unsigned image", s.name)
		}
		t.Logf("%s refuses an unsigned image: %v", s.name, err)
	}

	for i := 1; i <= coldN; i++ {
		for k := range 2 {
			s := sides[(i+k)%2]
			s.measure(t, reg, &s.cold, fmt.Sprintf("cold-%d", i), images[i])
			s.measure(t, reg, &s.coldTag, fmt.Sprintf("cold-tag-%d", i), tags[coldN+i])
		}
	}
	// Each turn in a new order: a pod created right after the peer's meets
	// what the peer left running (its collector, the API server's work),
	// and a fixed rotation would always hand that to the same side.
	order := rand.New(rand.NewPCG(1, 2))
	warmStart := time.Now()
	for i := range warmN {
		for _, k := range order.Perm(len(sides)) {
			s := sides[k]
			s.measure(t, reg, &s.warm, fmt.Sprintf("warm-%d", i), images[1])
			s.measure(t, reg, &s.warmTag, fmt.Sprintf("warm-tag-%d", i), tags[coldN+1])
		}
	}
	// What is deterministic is asserted: on a registry it knows, imagegate
	// asks for a cold image's .sig manifest and referrers listing (and the
	// tag's HEAD), and for a warm one nothing (but the tag's HEAD: a tag is
	// resolved at every admission). A warm phase longer than the
	// verification TTL (serve's default, 5m) re-verifies once per TTL: that
	// many warm pods may ask for more.
	expiries := int(time.Since(warmStart) / (5 * time.Minute))
	for _, c := range []struct {
		what    string
		samples []peerSample
		want    int64
		renewed int
	}{{"cold pod by digest", sides[0].cold, 2, 0}, {"cold pod by tag", sides[0].coldTag, 3, 0},
		{"warm pod by digest", sides[0].warm, 0, expiries}, {"warm pod by tag", sides[0].warmTag, 1, expiries}} {
		renewed := 0
		for _, s := range c.samples {
			if s.requests > c.want && renewed < c.renewed {
				renewed++
				continue
			}
			if s.requests != c.want {
				t.Errorf("imagegate: a %s made %d registry requests, want %d (%d re-verified after the TTL)", c.what, s.requests, c.want, renewed)
				break
			}
		}
	}
	// imagegate's own view: the time it spent answering (from the request
	// read to the answer written), against the latency it adds above.
	body := getBody(t, http.DefaultClient, ig.MetricsURL+"/metrics")
	for _, m := range []string{"imagegate_admission_duration_seconds", "imagegate_mutation_duration_seconds"} {
		sum, count := 0.0, 0.0
		for _, line := range strings.Split(body, "\n") {
			series, v, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			f, _ := strconv.ParseFloat(v, 64)
			switch {
			case strings.HasPrefix(series, m+"_sum"):
				sum += f
			case strings.HasPrefix(series, m+"_count"):
				count += f
			}
		}
		if count > 0 {
			t.Logf("imagegate %s: %.0f answers, mean %.3f ms", m, count, 1000*sum/count)
		}
	}
	// Its whole process: CPU and garbage collections over the run.
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "process_cpu_seconds_total ") || strings.HasPrefix(line, "go_gc_duration_seconds_count ") ||
			strings.HasPrefix(line, "go_gc_duration_seconds_sum ") || strings.HasPrefix(line, "go_memstats_heap_inuse_bytes ") {
			t.Logf("imagegate %s", line)
		}
	}
	table := peerTable(sides, coldN, warmN, delay)
	t.Log("\n" + table)
	if out := os.Getenv("PEER_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Errorf("PEER_OUT: %v", err)
		}
		if err := os.WriteFile(strings.TrimSuffix(out, ".md")+".csv", []byte(peerSamples(sides)), 0o644); err != nil {
			t.Errorf("PEER_OUT samples: %v", err)
		}
	}
}

// peerSamples is every pod creation as CSV (side, phase, reference, turn,
// microseconds, registry requests), for analyses beyond the table.
func peerSamples(sides []*peerSide) string {
	var b strings.Builder
	b.WriteString("side,phase,reference,turn,us,requests\n")
	for _, s := range sides {
		for _, m := range []struct {
			phase, ref string
			ss         []peerSample
		}{{"cold", "digest", s.cold}, {"cold", "tag", s.coldTag}, {"warm", "digest", s.warm}, {"warm", "tag", s.warmTag}} {
			for i, x := range m.ss {
				fmt.Fprintf(&b, "%s,%s,%s,%d,%d,%d\n", s.name, m.phase, m.ref, i, x.d.Microseconds(), x.requests)
			}
		}
	}
	return b.String()
}

// peerSide is one namespace and what its pod creations measured.
type peerSide struct {
	name, ns   string
	pods       podCreator
	cold, warm []peerSample
	// the same by tag: the pod names image:v1
	coldTag, warmTag []peerSample
}

type podCreator interface {
	Create(ctx context.Context, p *corev1.Pod, opts metav1.CreateOptions) (*corev1.Pod, error)
}

type peerSample struct {
	d        time.Duration
	requests int64
}

// measure creates one pod of image and records its latency and the
// registry requests made meanwhile (the sides take turns, one pod at a time).
func (s *peerSide) measure(t *testing.T, reg *countingProxy, into *[]peerSample, name, image string) {
	t.Helper()
	before := reg.requests.Load()
	reg.take()
	start := time.Now()
	_, err := s.pods.Create(context.Background(), pod(name, image, nil), metav1.CreateOptions{})
	d := time.Since(start)
	if err != nil {
		t.Fatalf("%s: pod %s of %s: %v", s.name, name, image, err)
	}
	*into = append(*into, peerSample{d: d, requests: reg.requests.Load() - before})
	if len(*into) == 1 { // what the first cold (and warm) pod asked the registry
		t.Logf("%s, %s: %s, registry requests %q", s.name, name, d.Round(10*time.Microsecond), reg.take())
	}
}

func peerTable(sides []*peerSide, coldN, warmN int, delay time.Duration) string {
	var b strings.Builder
	floor := sides[len(sides)-1]
	fmt.Fprintf(&b, "pod creation through kube-apiserver, one pod at a time, the sides alternating; %d cold images and %d warm pods per side; registry latency added per request: %s\n\n", coldN, warmN, delay)
	b.WriteString("| side | image | cold p50 | cold p99 | registry requests per cold pod | warm p50 | warm p99 | registry requests per warm pod | added, paired p50 / p99 | added, p99 − API server's p99 |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range sides {
		for _, m := range []struct {
			name       string
			cold, warm []peerSample
			floor      []peerSample
		}{{"by digest", s.cold, s.warm, floor.warm}, {"by tag", s.coldTag, s.warmTag, floor.warmTag}} {
			cold, added := "— | — | —", "— | —"
			if len(m.cold) > 0 {
				cold = fmt.Sprintf("%s | %s | %s", ms(pctOf(m.cold, 50)), ms(pctOf(m.cold, 99)), reqs(m.cold))
			}
			if s != floor {
				d := paired(m.warm, m.floor)
				added = fmt.Sprintf("%s / %s | %s", ms(pctOf(d, 50)), ms(pctOf(d, 99)), ms(pctOf(m.warm, 99)-pctOf(m.floor, 99)))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", s.name, m.name, cold, ms(pctOf(m.warm, 50)), ms(pctOf(m.warm, 99)), reqs(m.warm), added)
		}
	}
	return b.String()
}

// paired is each warm pod's latency less that of the pod the API server
// alone created in the same turn (the sides take turns, so the i-th
// samples of each met the same load): the latency the webhook added.
func paired(side, floor []peerSample) []peerSample {
	n := min(len(side), len(floor))
	d := make([]peerSample, n)
	for i := range n {
		d[i] = peerSample{d: side[i].d - floor[i].d}
	}
	return d
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func pctOf(ss []peerSample, p int) time.Duration {
	if len(ss) == 0 {
		return 0
	}
	d := make([]time.Duration, len(ss))
	for i, s := range ss {
		d[i] = s.d
	}
	slices.Sort(d)
	return d[(len(d)-1)*p/100]
}

func reqs(ss []peerSample) string {
	var n int64
	for _, s := range ss {
		n += s.requests
	}
	return strconv.FormatFloat(float64(n)/float64(len(ss)), 'f', 1, 64)
}

func labelledNamespace(t *testing.T, client kubernetes.Interface, prefix string, labels map[string]string) string {
	t.Helper()
	ns, err := client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	// policy-controller reads the pod's ServiceAccount for pull secrets
	// (k8schain); no controller-manager makes the default one here.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := client.CoreV1().ServiceAccounts(ns.Name).Create(context.Background(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ServiceAccount: %v", err)
	}
	return ns.Name
}

// applyClusterImagePolicy requires every image to be signed by the cosign
// key pubFile, without a transparency log (as imagegate's Attestor above).
func applyClusterImagePolicy(t *testing.T, c *harness.Cluster, pubFile string) {
	t.Helper()
	pubPEM, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	cip := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.sigstore.dev/v1beta1",
		"kind":       "ClusterImagePolicy",
		"metadata":   map[string]any{"name": "peer-signed"},
		"spec": map[string]any{
			"images":      []any{map[string]any{"glob": "**"}},
			"authorities": []any{map[string]any{"name": "peer-ci", "key": map[string]any{"data": string(pubPEM)}}},
		},
	}}
	if _, err := dyn.Resource(clusterImagePolicies).Create(context.Background(), cip, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ClusterImagePolicy: %v", err)
	}
}

// countingProxy is a reverse proxy in front of a registry that counts the
// requests it forwards and can delay each by a fixed latency.
type countingProxy struct {
	host     string
	requests atomic.Int64
	mu       sync.Mutex
	recent   []string // method and path of the last requests, for the log
}

// take returns the requests recorded since the last call.
func (p *countingProxy) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.recent
	p.recent = nil
	return r
}

func newCountingProxy(t *testing.T, registry string, delay time.Duration) *countingProxy {
	t.Helper()
	target, _ := url.Parse("http://" + registry)
	rp := httputil.NewSingleHostReverseProxy(target)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{host: l.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.mu.Lock()
		if len(p.recent) < 64 {
			p.recent = append(p.recent, r.Method+" "+r.URL.Path)
		}
		p.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("%s=%q: want a duration such as 2ms", name, v)
	}
	return d
}
