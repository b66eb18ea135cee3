// Package memory measures what imagegate serve holds for a large fleet:
// signature verifications of many distinct images (the attestation
// Verifier's caches) and the scan index of as many scan records.
//
//	go test -run '^$' -bench Memory -benchtime 1x -timeout 60m ./test/memory/ [-images 100000]
package memory

import (
	"context"
	"crypto/elliptic"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/scan"
	"github.com/imagegate/imagegate/workload"
)

var (
	images = flag.Int("images", 100000, "distinct images verified, and scan records held")
	store  = flag.String("store", "", "BenchmarkWriteScanStore: the scan store file to write")
)

// BenchmarkMemory verifies -images distinct signed images from an
// in-process registry with one Verifier, and loads as many scan records (30
// findings each) into a scan index. It reports the heap each retains (the
// live heap with it, less the live heap once it is dropped, so the
// registry's own memory is not counted), the entries in the Verifier's
// caches, and the process's peak RSS (which includes the registry).
func BenchmarkMemory(b *testing.B) {
	for range b.N {
		n := *images
		reg := at.NewRegistry(b)
		key := at.ECKey(b, elliptic.P256())
		atts := []*policy.Attestor{at.KeyAttestor(b, "ci", key)}
		refs := make([]workload.Image, n)
		start := time.Now()
		parallel(n, func(i int) {
			repo := "team/app" + strconv.Itoa(i%100)
			ref, d := reg.Push(b, repo, "v"+strconv.Itoa(i))
			reg.Sign(b, repo, d, key)
			refs[i] = workload.ParseImage(ref)
		})
		reg.Reset()
		pushed := time.Since(start)

		v, err := attestation.New()
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		verifyAll(b, v, refs, atts)
		verified := time.Since(start)
		withVerifier := liveHeap()
		runtime.KeepAlive(v)
		v = nil
		b.ReportMetric(mb(withVerifier-liveHeap()), "verifier-heap-MB")

		start = time.Now()
		idx := scanIndex(b, n)
		withIndex := liveHeap()
		runtime.KeepAlive(idx)
		idx = nil
		b.ReportMetric(mb(withIndex-liveHeap()), "scan-index-heap-MB")
		b.ReportMetric(peakRSS(), "peak-RSS-MB")
		b.Logf("%d images: pushed and signed in %s, verified in %s; scan index built in %s", n, pushed.Round(time.Second), verified.Round(time.Second), time.Since(start).Round(time.Second))
	}
}

// parallel runs f(0) … f(n-1), eight at a time (the registry's requests
// are mostly waiting).
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// verifyAll verifies every image, eight at a time, as concurrent admissions
// would.
func verifyAll(b *testing.B, v *attestation.Verifier, imgs []workload.Image, atts []*policy.Attestor) {
	var mu sync.Mutex
	var failed []string
	parallel(len(imgs), func(i int) {
		if r := v.Verify(context.Background(), imgs[i], atts); r.Attestors[0].Outcome != attestation.Verified {
			mu.Lock()
			failed = append(failed, imgs[i].Ref+": "+r.Attestors[0].Reason)
			mu.Unlock()
		}
	})
	if len(failed) > 0 {
		b.Fatalf("%d images not verified, first %s", len(failed), failed[0])
	}
}

// BenchmarkWriteScanStore writes -images scan records (as scanIndex's) into
// the store file -store, for imagegate serve --scan-store (serve_rss.sh).
func BenchmarkWriteScanStore(b *testing.B) {
	if *store == "" {
		b.Skip("no -store")
	}
	for range b.N {
		writeScans(b, *store, *images)
	}
}

// scanIndex holds n images with 30 findings each, drawn from a shared pool
// of vulnerability ids as real fleets are (scan's BenchmarkLookup).
func scanIndex(b *testing.B, n int) *scan.Index {
	path := filepath.Join(b.TempDir(), "scans.db")
	writeScans(b, path, n)
	r, err := scan.OpenReader(path)
	if err != nil {
		b.Fatal(err)
	}
	return r.Index()
}

// writeScans imports n scan records into the store at path.
func writeScans(b *testing.B, path string, n int) {
	const batch = 5000
	for start := 0; start < n; start += batch {
		var recs []*scan.Record
		for i := start; i < min(start+batch, n); i++ {
			s := facts.Scan{ScannedAt: time.Now(), Source: "trivy"}
			for j := range 30 {
				s.Findings = append(s.Findings, facts.Finding{Category: facts.Vul, ID: fmt.Sprintf("CVE-2024-%05d", (i*7+j*131)%20000), Level: "medium", Class: "cve", Name: fmt.Sprintf("package-%d", j)})
			}
			recs = append(recs, &scan.Record{Digest: fmt.Sprintf("sha256:%064x", i), Scan: s})
		}
		if err := scan.Import(path, recs, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func mb(n uint64) float64 { return float64(int64(n)) / (1 << 20) }

// peakRSS is VmHWM from /proc/self/status, in MB (0 where there is none).
func peakRSS() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
