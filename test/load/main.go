// Command load drives an imagegate webhook with concurrent keep-alive HTTPS
// clients posting AdmissionReviews for a bounded time, and prints throughput
// and latency percentiles. Only loopback targets are accepted.
//
//	go run ./test/load -url https://127.0.0.1:8443/validate -c 16 -d 10s [-rate 2000] [-shape repeated|distinct|alert|deny] [-namespace kube-system]
//
// The requests are reviews.Review's (package test/load/reviews): 5.6 KB pods
// that test/load/testdata's policies and facts allow, alert on or deny.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imagegate/imagegate/test/load/reviews"
)

func main() {
	target := flag.String("url", "https://127.0.0.1:8443/validate", "webhook URL (loopback only)")
	conc := flag.Int("c", 16, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "how long to send")
	rate := flag.Float64("rate", 0, "total requests per second (0: as fast as answers come)")
	namespace := flag.String("namespace", "default", "namespace of the pods (an exempt one measures the floor)")
	shape := flag.String("shape", string(reviews.Repeated), "the pods: repeated, distinct (a namespace each, so no decision repeats), alert or deny")
	images := flag.String("images", "", "comma-separated images of the pod (default: the shape's)")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || !isLoopback(u.Hostname()) {
		fmt.Fprintf(os.Stderr, "load: -url must be an https URL on a loopback address, got %q\n", *target)
		os.Exit(2)
	}
	if !slices.Contains(reviews.Shapes, reviews.Shape(*shape)) {
		fmt.Fprintf(os.Stderr, "load: -shape %q: expected one of %v\n", *shape, reviews.Shapes)
		os.Exit(2)
	}
	res := run(*target, *conc, *dur, *rate, *namespace, reviews.Shape(*shape), splitComma(*images))
	res.print(os.Stdout, *conc, *rate, *namespace, *shape)
	if res.errors > 0 {
		os.Exit(1)
	}
}

type result struct {
	latencies []time.Duration
	errors    int64
	elapsed   time.Duration
}

func run(target string, conc int, dur time.Duration, rate float64, ns string, shape reviews.Shape, images []string) result {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // loopback load test of our own server
		ForceAttemptHTTP2:   false,                                 // one connection per client, like API server replicas
		MaxIdleConnsPerHost: conc,
		MaxConnsPerHost:     conc,
	}
	client := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		tick = t.C
	}
	var seq atomic.Int64
	var errs atomic.Int64
	per := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				if tick != nil {
					select {
					case <-tick:
					case <-ctx.Done():
						return
					}
				} else if ctx.Err() != nil {
					return
				}
				n := seq.Add(1)
				body := reviews.ReviewOf(shape, n, ns, images)
				t0 := time.Now()
				resp, err := client.Post(target, "application/json", bytes.NewReader(body))
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				per[w] = append(per[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	var all []time.Duration
	for _, p := range per {
		all = append(all, p...)
	}
	slices.Sort(all)
	return result{latencies: all, errors: errs.Load(), elapsed: time.Since(start)}
}

func (r result) print(w io.Writer, conc int, rate float64, ns, shape string) {
	n := len(r.latencies)
	if n == 0 {
		fmt.Fprintf(w, "no successful requests (%d errors)\n", r.errors)
		return
	}
	pct := func(p float64) time.Duration { return r.latencies[min(n-1, int(float64(n)*p))] }
	fmt.Fprintf(w, "clients=%d rate=%g namespace=%s shape=%s\n", conc, rate, ns, shape)
	fmt.Fprintf(w, "requests=%d errors=%d elapsed=%s throughput=%.0f/s\n", n, r.errors, r.elapsed.Round(time.Millisecond), float64(n)/r.elapsed.Seconds())
	fmt.Fprintf(w, "p50=%s p90=%s p99=%s max=%s\n", pct(.50), pct(.90), pct(.99), r.latencies[n-1])
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
