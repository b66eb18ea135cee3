package attestation

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
	"github.com/prometheus/client_golang/prometheus"
)

// nowhere answers every registry request without a network: the API
// version check succeeds, everything else is not found.
type nowhere struct{}

func (nowhere) RoundTrip(r *http.Request) (*http.Response, error) {
	code, body := http.StatusNotFound, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`
	if r.URL.Path == "/v2/" {
		code, body = http.StatusOK, `{}`
	}
	return &http.Response{StatusCode: code, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Pods naming 10,000 distinct registries leave bounded state behind: metric
// series, per-registry limiters, cached registry clients.
func TestManyRegistriesLeaveBoundedState(t *testing.T) {
	const hosts = 10000
	reg := prometheus.NewRegistry()
	// The caches are bounded by entries (1,000 here): what else grows is the leak.
	v, err := New(WithTransport(nowhere{}), WithRegisterer(reg), WithRetries(0, 0), WithCacheSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	att := &policy.Attestor{Metadata: policy.ObjectMeta{Name: "ci"}}
	att.Spec.TransparencyLog = "ignore"
	run := func(from, to int) {
		var wg sync.WaitGroup
		next := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range next {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					r := v.Verify(ctx, workload.ParseImage(fmt.Sprintf("r%d.example.com/app%d@sha256:%064x", i, i, i)), []*policy.Attestor{att})
					cancel()
					if r.Attestors[0].Outcome == Verified {
						t.Errorf("%s verified", r.Image)
					}
				}
			})
		}
		for i := from; i < to; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	run(0, 1000) // warm: pools, metric families, the first clients
	before := heapInUse()
	run(1000, hosts)
	grown := int64(heapInUse()) - int64(before)
	t.Logf("heap grew %d KiB over %d registries", grown>>10, hosts-1000)

	v.guard.mu.Lock()
	limiters := len(v.guard.slots)
	v.guard.mu.Unlock()
	if limiters != 0 {
		t.Errorf("%d per-registry limiters left with no request in flight", limiters)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	registries := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "imagegate_registry_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "registry" {
					registries[l.GetValue()] = true
				}
			}
		}
	}
	if len(registries) > DefaultMaxRegistryLabels+1 || !registries["other"] {
		t.Errorf("%d registry label values (want at most %d and \"other\")", len(registries), DefaultMaxRegistryLabels+1)
	}
	// Without bounds every registry keeps a client (ggcr's per-repository
	// reader with its transport), about 450 bytes each: 9,000 of them are ~4 MB.
	if grown > 2<<20 {
		t.Errorf("heap grew %d MiB over %d registries", grown>>20, hosts-1000)
	}
}
