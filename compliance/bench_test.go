package compliance_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/compliance"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/inventory"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/scan"
	"github.com/imagegate/imagegate/workload"
	"k8s.io/client-go/kubernetes/fake"
)

// counter is a Sink counting changes, and those of one digest.
type counter struct {
	all  atomic.Int64
	mu   sync.Mutex
	want string
	hit  chan struct{}
}

func (c *counter) Changed(_ context.Context, cs []compliance.Change) {
	c.all.Add(int64(len(cs)))
	c.mu.Lock()
	want := c.want
	c.mu.Unlock()
	for _, ch := range cs {
		if want != "" && ch.Cause.Detail == want {
			select {
			case c.hit <- struct{}{}:
			default:
			}
			return
		}
	}
}

type benchEnv struct {
	mon     *compliance.Monitor
	store   *scan.File
	reader  *scan.Reader
	engines *admission.Engines
	sink    *counter
	dec     *admission.Decider
	base    string
}

// newBenchEnv: pods pods over images images in 10 namespaces, each image
// scanned (with one high vulnerability), decided once.
func newBenchEnv(b *testing.B, pods, images int) *benchEnv {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	client := fake.NewClientset()
	for i := range pods {
		p := pod(fmt.Sprintf("ns%d", i%10), fmt.Sprintf("p%05d", i), i%images, nil)
		p.Annotations = nil
		if err := client.Tracker().Add(p); err != nil {
			b.Fatal(err)
		}
	}
	env := &benchEnv{engines: &admission.Engines{}, sink: &counter{hit: make(chan struct{}, 1)}}
	env.store = scan.NewFile(filepath.Join(b.TempDir(), "scans.db"))
	var recs []*scan.Record
	for i := range images {
		recs = append(recs, &scan.Record{Digest: digest(i), Scan: facts.Scan{ScannedAt: time.Now(), Source: "bench",
			Findings: []facts.Finding{{Category: facts.Vul, ID: fmt.Sprintf("CVE-2026-%d", i), Level: "medium", Class: "cve"}}}})
	}
	if err := env.store.Import(ctx, recs, nil); err != nil {
		b.Fatal(err)
	}
	var err error
	if env.reader, err = scan.NewReader(ctx, env.store); err != nil {
		b.Fatal(err)
	}
	env.base = strategies + `---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-high}
spec: {strategyId: 4, ruleAction: 2, alarmDetail: {vul: {riskLevel: [high]}}}
`
	env.engines.Swap(engineB(b, env.base))
	env.dec = admission.NewDecider(env.engines, scan.NewSource(env.reader.Index()))
	var mon *compliance.Monitor
	inv, err := inventory.New(client, inventory.WithOnChange(func(k inventory.Key) { mon.PodChanged(k) }))
	if err != nil {
		b.Fatal(err)
	}
	mon, err = compliance.New(inv, env.dec, env.engines, compliance.WithSinks(env.sink), compliance.WithResync(0))
	if err != nil {
		b.Fatal(err)
	}
	env.mon = mon
	env.reader.OnChange(mon.ScanChanged)
	inv.Start(ctx)
	if !inv.WaitSynced(ctx) {
		b.Fatal("not synced")
	}
	go mon.Run(ctx)
	for !mon.Synced() {
		time.Sleep(10 * time.Millisecond)
	}
	return env
}

func engineB(b *testing.B, doc string) *rego.Engine { return engine(b, doc, 0) }

// BenchmarkMaliciousVerdict: 10,000 pods over 1,000 images; a digest is
// marked malicious (and cleared, alternately) in the scan store: the time
// from the write until the monitor reported its workloads.
func BenchmarkMaliciousVerdict(b *testing.B) {
	env := newBenchEnv(b, 10_000, 1_000)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		d := digest(i % 1000)
		env.sink.mu.Lock()
		env.sink.want = d
		env.sink.mu.Unlock()
		if err := env.store.Import(ctx, nil, map[string]string{d: "bench"}); err != nil {
			b.Fatal(err)
		}
		if _, err := env.reader.Refresh(); err != nil {
			b.Fatal(err)
		}
		<-env.sink.hit
		b.StopTimer()
		env.store.ClearMalicious(ctx, d)
		env.reader.Refresh()
		<-env.sink.hit
		b.StartTimer()
	}
}

// BenchmarkPolicyChange: 10,000 pods over 1,000 images; the policy
// snapshot changes so that every workload's verdict changes (a strategy
// blocking medium vulnerabilities added, then removed): the time until all
// 10,000 were decided again and reported.
func BenchmarkPolicyChange(b *testing.B) {
	env := newBenchEnv(b, 10_000, 1_000)
	tight := env.base + `---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-medium}
spec: {strategyId: 5, ruleAction: 2, alarmDetail: {vul: {riskLevel: [medium]}}}
`
	engines := []*rego.Engine{engineB(b, tight), engineB(b, env.base)}
	b.ResetTimer()
	for i := range b.N {
		start := env.sink.all.Load()
		env.engines.Swap(engines[i%2])
		for env.sink.all.Load()-start < 10_000 {
			time.Sleep(time.Millisecond)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/full-pass")
}

// BenchmarkAdmissionDuringFullPass: the admission decision (the Decider the
// webhook calls) on a pod of a new spec each time, idle and while the
// monitor decides 10,000 workloads again over and over.
func BenchmarkAdmissionDuringFullPass(b *testing.B) {
	env := newBenchEnv(b, 10_000, 1_000)
	tight := env.base + `---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: alert-name}
spec: {strategyId: 6, ruleAction: 1, imageName: ["app1*"]}
`
	engines := []*rego.Engine{engineB(b, tight), engineB(b, env.base)}
	for _, busy := range []bool{false, true} {
		name := "idle"
		if busy {
			name = "during-full-pass"
		}
		b.Run(name, func(b *testing.B) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if busy {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						start := env.sink.all.Load()
						env.engines.Swap(engines[i%2])
						for env.sink.all.Load()-start < 1_000 {
							select {
							case <-stop:
								return
							default:
								time.Sleep(time.Millisecond)
							}
						}
					}
				}()
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				obj := workload.FromPod(workload.Pod{Namespace: "ns1", Name: "new", Labels: map[string]string{"run": fmt.Sprint(i)},
					Containers: []workload.PodContainer{{Name: "c", Image: image(i % 1000)}}})
				t0 := time.Now()
				if _, err := env.dec.DecideOutcome(context.Background(), obj); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)*999/1000].Microseconds()), "p99.9-µs")
			var sum time.Duration
			for _, l := range lat {
				sum += l
			}
			b.ReportMetric(float64(sum.Microseconds())/float64(len(lat)), "mean-µs")
		})
	}
}
