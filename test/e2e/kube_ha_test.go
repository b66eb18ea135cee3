package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// balancer spreads TCP connections over backends round robin, skipping one
// that refuses the connection or was removed, as a Service's proxy does for
// ready endpoints (a terminating pod's endpoint is removed; connections
// already made to it stay). TLS goes through untouched.
type balancer struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	mu       sync.Mutex
	conns    []net.Conn
	removed  map[string]bool
	upstream map[net.Conn]string // open connections to backends → backend
}

// Upstream lists the local addresses of the open connections to backend,
// as backend sees them (to tell the API server's from others in its log).
func (b *balancer) Upstream(backend string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for c, be := range b.upstream {
		if be == backend {
			out = append(out, c.LocalAddr().String())
		}
	}
	return out
}

// Remove sends no new connection to backend.
func (b *balancer) Remove(backend string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.removed == nil {
		b.removed = map[string]bool{}
	}
	b.removed[backend] = true
}

func (b *balancer) isRemoved(backend string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.removed[backend]
}

func startBalancer(t *testing.T, backends ...string) *balancer {
	return startBalancerAt(t, "127.0.0.1:0", backends...)
}

func startBalancerAt(t *testing.T, addr string, backends ...string) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, backends: backends}
	t.Cleanup(b.Close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c)
		}
	}()
	return b
}

// Close stops listening and cuts every connection, as a network partition.
func (b *balancer) Close() {
	b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
}

func (b *balancer) serve(c net.Conn) {
	defer c.Close()
	b.mu.Lock()
	b.conns = append(b.conns, c)
	b.mu.Unlock()
	start := b.next.Add(1)
	for i := range b.backends {
		be := b.backends[(int(start)+i)%len(b.backends)]
		if b.isRemoved(be) {
			continue
		}
		up, err := net.DialTimeout("tcp", be, time.Second)
		if err != nil {
			continue
		}
		b.mu.Lock()
		if b.upstream == nil {
			b.upstream = map[net.Conn]string{}
		}
		b.upstream[up] = be
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			delete(b.upstream, up)
			b.mu.Unlock()
			up.Close()
		}()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		_, _ = io.Copy(c, up)
		return
	}
}

// podReview is an AdmissionReview of a pod with one image in namespace ns.
func podReview(ns, image string) []byte {
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": ns},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": image}}}}
	raw, _ := json.Marshal(pod)
	b, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": "ha", "kind": map[string]any{"group": "", "version": "v1", "kind": "Pod"},
		"resource":  map[string]any{"group": "", "version": "v1", "resource": "pods"},
		"namespace": ns, "operation": "CREATE", "object": json.RawMessage(raw),
		"userInfo": map[string]any{"username": "e2e"},
	}})
	return b
}

// allowedBy asks one replica directly.
func allowedBy(t *testing.T, ig *harness.Imagegate, ns, image string) bool {
	t.Helper()
	c := ig.HTTPClient()
	// Its own connection would stay open on the replica: gone, the
	// stopped replica's drain sees only the API server's connections.
	defer c.CloseIdleConnections()
	res, err := c.Post(ig.URL+"/validate", "application/json", bytes.NewReader(podReview(ns, image)))
	if err != nil {
		t.Fatalf("POST /validate: %v", err)
	}
	defer res.Body.Close()
	var out struct {
		Response struct {
			Allowed bool `json:"allowed"`
		} `json:"response"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Response.Allowed
}

// TestKubeReplicas: two imagegate replicas watching the same resources
// decide alike, including right after a change, and stopping one while the
// API server sends admissions through a balancer fails none of them.
func TestKubeReplicas(t *testing.T) {
	cluster := harness.SharedCluster(t)
	ctx := context.Background()
	strategies := cluster.ApplyPolicies(t, kubeStrategy).Resource(harness.OpaStrategies)
	factsFile := writeFile(t, t.TempDir(), "facts.yaml", facts)
	args := []string{"--policy-source=kube", "--kubeconfig", cluster.Kubeconfig, "--cluster-id", clusterID, "--facts", factsFile, "--shutdown-timeout", "10s"}
	a := harness.StartImagegate(t, args...)
	b := harness.StartImagegate(t, args...)
	lb := startBalancer(t, strings.TrimPrefix(a.URL, "https://"), strings.TrimPrefix(b.URL, "https://"))
	harness.RegisterWebhook(t, cluster.Config, "https://"+lb.ln.Addr().String(), append(append([]byte{}, a.CAPEM...), b.CAPEM...))
	client := cluster.Client(t)
	ns := createNamespace(t, client, "kube-replicas")

	t.Run("replicas agree, also right after a change", func(t *testing.T) {
		for _, img := range []string{blockedImage, goodImage, alertedImage} {
			if ra, rb := allowedBy(t, a, ns, img), allowedBy(t, b, ns, img); ra != rb {
				t.Errorf("%s: replica a allowed=%v, b allowed=%v", img, ra, rb)
			}
		}
		patch := []byte(`{"spec":{"imageName":["blocked-*","alerted-*"]}}`)
		if _, err := strategies.Patch(ctx, "kube-block", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, 5*time.Second, "both replicas block "+alertedImage, func() (bool, error) {
			return !allowedBy(t, a, ns, alertedImage) && !allowedBy(t, b, ns, alertedImage), nil
		})
		t.Logf("MEASURED: both replicas enforced the change %s after it", took.Round(time.Millisecond))
	})

	t.Run("one replica stopped under load fails no admission", func(t *testing.T) {
		pods := client.CoreV1().Pods(ns)
		dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
		stop := make(chan struct{})
		var stopAt atomic.Int64
		sinceStop := func() string {
			if at := stopAt.Load(); at != 0 {
				return time.Since(time.Unix(0, at)).Round(time.Millisecond).String()
			}
			return "before"
		}
		var wg sync.WaitGroup
		var total, wrong atomic.Int64
		var mu sync.Mutex
		var failures []string
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					img, wantAllowed := goodImage, true
					if (i+w)%2 == 1 {
						img, wantAllowed = blockedImage, false
					}
					_, err := pods.Create(ctx, pod("p", img, nil), dryRun)
					total.Add(1)
					ok := (err == nil) == wantAllowed && (err == nil || strings.Contains(err.Error(), kubeBlockedMsg))
					if !ok {
						wrong.Add(1)
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s (%s after the stop began): %s", img, sinceStop(), errString(err)))
						mu.Unlock()
					}
				}
			}(w)
		}
		baseA, baseB := admissions(t, a), admissions(t, b)
		time.Sleep(time.Second)
		// Stop the replica that serves the load (with HTTP/2 the API server
		// may keep one connection, so one replica can have all of it).
		victim, gotA, gotB := a, admissions(t, a)-baseA, admissions(t, b)-baseB
		if gotB > gotA {
			victim = b
		}
		t.Logf("load before the stop: replica a %d, replica b %d admissions; stopping the busier one", gotA, gotB)
		before := total.Load()
		// As in a cluster: the terminating replica's endpoint goes, the
		// connections the API server keeps to it stay, and SIGTERM comes.
		// No admission may meet a connection closed under it.
		lb.Remove(strings.TrimPrefix(victim.URL, "https://"))
		t.Logf("the API server's connections to the stopped replica (as it sees them): %v", lb.Upstream(strings.TrimPrefix(victim.URL, "https://")))
		stopAt.Store(time.Now().UnixNano())
		victim.Stop()
		t.Logf("the stopped replica exited %s after SIGTERM", sinceStop())
		for _, l := range strings.Split(victim.Tail(20), "\n") {
			if strings.Contains(l, "shutting down") {
				t.Logf("stopped replica: %s", l)
			}
		}
		time.Sleep(2 * time.Second)
		close(stop)
		wg.Wait()
		t.Logf("MEASURED: %d admissions (%d after the busier replica was stopped), %d wrong or failed", total.Load(), total.Load()-before, wrong.Load())
		if wrong.Load() > 0 {
			t.Errorf("%d of %d admissions failed or were decided wrongly, e.g. %q", wrong.Load(), total.Load(), failures[0])
		}
		if total.Load()-before < 10 {
			t.Errorf("only %d admissions after the stop: the load did not go on", total.Load()-before)
		}
	})
}

// admissions reads imagegate_admission_requests_total from a replica.
func admissions(t *testing.T, ig *harness.Imagegate) int64 {
	t.Helper()
	res, err := http.Get(ig.MetricsURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var n int64
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "imagegate_admission_requests_total") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int64(v)
		}
	}
	return n
}

func errString(err error) string {
	if err == nil {
		return "admitted"
	}
	return err.Error()
}
