// Command soak drives `imagegate serve` with distinct images for a long time
// and records how its memory and goroutines evolve: it starts a local
// registry that signs whatever digest it is asked about (so every image is
// new to imagegate's caches), runs the imagegate binary it is given against
// it with a policy requiring that signature, sends pods at a fixed rate, and
// samples the process every few seconds into a CSV and a PNG (resident
// memory, Go heap in use, goroutines; one panel each).
//
//	go run ./test/soak -imagegate bin/imagegate -d 10m -rate 50 -out soak-out
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	bin := flag.String("imagegate", "bin/imagegate", "imagegate binary")
	dur := flag.Duration("d", 10*time.Minute, "how long to send")
	rate := flag.Float64("rate", 50, "pods per second")
	perPod := flag.Int("images", 3, "distinct images per pod")
	inflight := flag.Int("max-inflight", 256, "requests in flight at most (as the API server's own limit); a tick finding them all busy is skipped and counted")
	every := flag.Duration("every", 5*time.Second, "sampling interval")
	out := flag.String("out", "soak-out", "directory for soak.csv, soak.png and imagegate.log")
	scanStore := flag.String("scan-store", "", "scan store for imagegate serve --scan-store (test/memory's BenchmarkWriteScanStore writes one)")
	flag.Parse()
	if err := run(*bin, *dur, *rate, *perPod, *inflight, *every, *out, *scanStore); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(bin string, dur time.Duration, rate float64, perPod, inflight int, every time.Duration, out, scanStore string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	regLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(regLn, &signingRegistry{key: key, blobs: map[string][]byte{}})
	registry := regLn.Addr().String()

	work, err := os.MkdirTemp("", "imagegate-soak")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := writePolicies(filepath.Join(work, "policies"), key); err != nil {
		return err
	}
	certFile, keyFile, err := writeServingCert(work)
	if err != nil {
		return err
	}
	listen, metrics := freeAddr(), freeAddr()
	logf, err := os.Create(filepath.Join(out, "imagegate.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--policies", filepath.Join(work, "policies"), "--cluster-id", "soak",
		"--tls-cert-file", certFile, "--tls-private-key-file", keyFile, "--listen", listen, "--metrics-listen", metrics,
		"--log-level", "error")
	if scanStore != "" {
		cmd.Args = append(cmd.Args, "--scan-store", scanStore)
	}
	pprofAddr := freeAddr()
	cmd.Args = append(cmd.Args, "--pprof-listen", pprofAddr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 64}} // loopback, our own server
	if err := waitReady(client, "https://"+listen+"/readyz"); err != nil {
		return err
	}

	var st stats
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	samples := make(chan sample, 1024)
	var wg sync.WaitGroup
	wg.Go(func() { drive(ctx, client, "https://"+listen+"/validate", registry, rate, perPod, inflight, &st) })
	wg.Go(func() { sampleLoop(ctx, metrics, every, &st, samples) })
	wg.Go(func() { heapProfile(ctx, dur/2, "http://"+pprofAddr, filepath.Join(out, "heap.prof")) })
	wg.Wait()
	close(samples)
	var all []sample
	for s := range samples {
		all = append(all, s)
	}
	if len(all) < 2 {
		return fmt.Errorf("only %d samples", len(all))
	}
	if err := writeCSV(filepath.Join(out, "soak.csv"), all); err != nil {
		return err
	}
	xs := make([]float64, len(all))
	rss, heap, gs := make([]float64, len(all)), make([]float64, len(all)), make([]float64, len(all))
	for i, s := range all {
		xs[i], rss[i], heap[i], gs[i] = s.at.Seconds(), s.rss/(1<<20), s.heap/(1<<20), s.goroutines
	}
	if err := plot(filepath.Join(out, "soak.png"), xs, []series{
		{"RSS MiB", rss, color.RGBA{200, 30, 30, 255}},
		{"heap in use MiB", heap, color.RGBA{30, 60, 200, 255}},
		{"goroutines", gs, color.RGBA{20, 140, 40, 255}},
	}); err != nil {
		return err
	}
	summarize(os.Stdout, all, &st, dur, perPod, inflight)
	return nil
}

// drive sends pods of perPod never-seen images at rate until ctx ends, with
// at most inflight requests outstanding: a server slower than the rate (a
// busy machine) then sees a bounded queue, as behind an API server, rather
// than an ever longer one that would show as memory growth.
func drive(ctx context.Context, client *http.Client, url, registry string, rate float64, perPod, inflight int, st *stats) {
	slots := make(chan struct{}, inflight)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var n atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			st.skipped.Add(1)
			continue
		}
		i := n.Add(1)
		wg.Go(func() {
			defer func() { <-slots }()
			var cs []string
			for j := range perPod {
				d := make([]byte, 32)
				_, _ = rand.Read(d)
				cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":"%s/soak/app%d@sha256:%x"}`, j, registry, i%100, d))
			}
			body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"soak-` + strconv.FormatInt(i, 10) +
				`","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"soak","operation":"CREATE",` +
				`"userInfo":{"username":"soak"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"soak"},"spec":{"containers":[` + strings.Join(cs, ",") + `]}}}}`
			start := time.Now()
			resp, err := client.Post(url+"?timeout=10s", "application/json", strings.NewReader(body))
			if err == nil {
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !bytes.Contains(raw, []byte(`"uid":"soak-`)) || bytes.Contains(raw, []byte("could not")) {
					err = fmt.Errorf("%d %s", resp.StatusCode, raw)
				} else if bytes.Contains(raw, []byte(`"allowed":true`)) {
					st.allowed.Add(1)
				}
			}
			st.record(time.Since(start), err)
		})
	}
}

type stats struct {
	allowed   atomic.Int64 // every image signed (a digest starting with f is not)
	skipped   atomic.Int64 // ticks with every request slot busy
	mu        sync.Mutex
	latencies []time.Duration // since the last sample
	requests  int64
	errors    int64
	lastErr   string
}

func (s *stats) record(d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.latencies = append(s.latencies, d)
	if err != nil {
		s.errors++
		s.lastErr = err.Error()
	}
}

// window returns the latency percentiles since the last call, and totals.
func (s *stats) window() (p50, p99 time.Duration, requests, errors int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.latencies
	s.latencies = nil
	if len(l) > 0 {
		slices.Sort(l)
		p50, p99 = l[len(l)/2], l[len(l)*99/100]
	}
	return p50, p99, s.requests, s.errors
}

type sample struct {
	at                    time.Duration
	rss, heap, goroutines float64
	requests, errors      int64
	p50, p99              time.Duration
}

func sampleLoop(ctx context.Context, metrics string, every time.Duration, st *stats, out chan<- sample) {
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	take := func() {
		m, err := scrape("http://" + metrics + "/metrics")
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak: sample:", err)
			return
		}
		p50, p99, n, e := st.window()
		out <- sample{at: time.Since(start), rss: m["process_resident_memory_bytes"], heap: m["go_memstats_heap_inuse_bytes"],
			goroutines: m["go_goroutines"], requests: n, errors: e, p50: p50, p99: p99}
	}
	take()
	for {
		select {
		case <-ctx.Done():
			take()
			return
		case <-t.C:
			take()
		}
	}
}

// scrape reads the unlabelled gauges of a Prometheus text exposition.
func scrape(url string) (map[string]float64, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			m[name] = f
		}
	}
	return m, sc.Err()
}

func writeCSV(path string, all []sample) error {
	var b strings.Builder
	b.WriteString("seconds,rss_bytes,heap_inuse_bytes,goroutines,requests,errors,p50_ms,p99_ms\n")
	for _, s := range all {
		fmt.Fprintf(&b, "%.1f,%.0f,%.0f,%.0f,%d,%d,%.2f,%.2f\n", s.at.Seconds(), s.rss, s.heap, s.goroutines, s.requests, s.errors,
			float64(s.p50.Microseconds())/1000, float64(s.p99.Microseconds())/1000)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// summarize prints the start, maximum and end of each series, and the
// growth of the heap over the second half of the run (a leak shows there,
// after the caches have filled).
func summarize(w io.Writer, all []sample, st *stats, dur time.Duration, perPod, inflight int) {
	first, last := all[0], all[len(all)-1]
	mid := all[len(all)/2]
	var maxRSS, maxHeap, maxG float64
	for _, s := range all {
		maxRSS, maxHeap, maxG = max(maxRSS, s.rss), max(maxHeap, s.heap), max(maxG, s.goroutines)
	}
	mib := func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }
	fmt.Fprintf(w, "soak: %v, %d admissions (%.0f/s) of %d distinct images, %d allowed (all images signed), %d errors, %d not sent (%d in flight)\n",
		dur, last.requests, float64(last.requests)/last.at.Seconds(), last.requests*int64(perPod), st.allowed.Load(), last.errors, st.skipped.Load(), inflight)
	fmt.Fprintf(w, "rss:        start %s, max %s, end %s\n", mib(first.rss), mib(maxRSS), mib(last.rss))
	fmt.Fprintf(w, "heap inuse: start %s, max %s, mid %s, end %s (second half: %+.1f MiB)\n", mib(first.heap), mib(maxHeap), mib(mid.heap), mib(last.heap), (last.heap-mid.heap)/(1<<20))
	fmt.Fprintf(w, "goroutines: start %.0f, max %.0f, end %.0f\n", first.goroutines, maxG, last.goroutines)
	if st.lastErr != "" {
		fmt.Fprintf(w, "last error: %.300s\n", st.lastErr)
	}
}

// waitReady waits up to 10 minutes: loading a large scan store takes a
// while.
func waitReady(c *http.Client, url string) error {
	var err error
	for range 6000 {
		var resp *http.Response
		if resp, err = c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writePolicies(dir string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	pub := strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	doc := "apiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: soak}\nspec:\n  transparencyLog: ignore\n  publicKeys:\n  - |\n    " +
		strings.ReplaceAll(pub, "\n", "\n    ") +
		"\n---\napiVersion: imagegate.dev/v1alpha1\nkind: BinarySecurityPolicy\nmetadata: {name: soak}\nspec:\n  policy: {policyMode: requireAttestor, requiredAttestors: [soak]}\n  clusters: [{clusterId: soak}]\n"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "policies.yaml"), []byte(doc), 0o644)
}

func writeServingCert(dir string) (certFile, keyFile string, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

// heapProfile saves imagegate's heap profile after `after` (half way: the
// caches full, the load on), for go tool pprof -sample_index=inuse_space.
func heapProfile(ctx context.Context, after time.Duration, base, path string) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(after):
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(base + "/debug/pprof/heap?gc=1")
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: heap profile:", err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: heap profile:", err)
	}
}
