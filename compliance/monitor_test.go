package compliance_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/compliance"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/inventory"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/scan"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

const strategies = `apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-malicious}
spec: {strategyId: 1, ruleAction: 2, maliciousImage: true}
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: alert-unscanned}
spec: {strategyId: 2, ruleAction: 1, unScanedImage: true}
`

func digest(i int) string { return fmt.Sprintf("sha256:%064x", i) }

func image(i int) string { return fmt.Sprintf("registry.example.com/team/app%d@%s", i, digest(i)) }

func engine(t testing.TB, doc string, maxAge time.Duration) *rego.Engine {
	t.Helper()
	objs, err := policy.Parse("p.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.NewSnapshot(objs...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := rego.New(context.Background(), snap, rego.WithClusterID("c1"), rego.WithMaxScanAge(maxAge))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func pod(ns, name string, img int, owner *metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name), Labels: map[string]string{"app": name},
		Annotations: map[string]string{"big": strings.Repeat("x", 100)}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image(img), Env: []corev1.EnvVar{{Name: "A", Value: "B"}}}}}}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return p
}

// recorder is a Sink keeping what it is told.
type recorder struct {
	mu      sync.Mutex
	changes []compliance.Change
}

func (r *recorder) Changed(_ context.Context, cs []compliance.Change) {
	r.mu.Lock()
	r.changes = append(r.changes, cs...)
	r.mu.Unlock()
}

func (r *recorder) take() []compliance.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.changes
	r.changes = nil
	return out
}

type fixture struct {
	t       *testing.T
	client  *fake.Clientset
	store   *scan.File
	reader  *scan.Reader
	engines *admission.Engines
	mon     *compliance.Monitor
	sink    *recorder
	reg     *prometheus.Registry
}

func start(t *testing.T, maxAge time.Duration, objs ...any) *fixture {
	t.Helper()
	return startWith(t, maxAge, nil, objs...)
}

func startWith(t *testing.T, maxAge time.Duration, opts []compliance.Option, objs ...any) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &fixture{t: t, client: fake.NewClientset(), sink: &recorder{}, engines: &admission.Engines{}, reg: prometheus.NewRegistry()}
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Pod:
			_, err = f.client.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.ReplicaSet:
			_, err = f.client.AppsV1().ReplicaSets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	f.store = scan.NewFile(filepath.Join(t.TempDir(), "scans.db"))
	// Every image scanned now, clean.
	var recs []*scan.Record
	for i := range 10 {
		recs = append(recs, &scan.Record{Digest: digest(i), Scan: facts.Scan{ScannedAt: time.Now(), Source: "test"}})
	}
	if err := f.store.Import(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.reader, err = scan.NewReader(ctx, f.store); err != nil {
		t.Fatal(err)
	}
	f.engines.Swap(engine(t, strategies, maxAge))
	dec := admission.NewDecider(f.engines, scan.NewSource(f.reader.Index()))
	var mon *compliance.Monitor
	inv, err := inventory.New(f.client, inventory.WithOnChange(func(k inventory.Key) { mon.PodChanged(k) }))
	if err != nil {
		t.Fatal(err)
	}
	mon, err = compliance.New(inv, dec, f.engines, append([]compliance.Option{compliance.WithSinks(f.sink), compliance.WithMaxScanAge(maxAge),
		compliance.WithDebounce(time.Millisecond), compliance.WithRegisterer(f.reg), compliance.WithExemptNamespaces("kube-system")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.mon = mon
	f.reader.OnChange(mon.ScanChanged)
	inv.Start(ctx)
	if !inv.WaitSynced(ctx) {
		t.Fatal("inventory not synced")
	}
	go mon.Run(ctx)
	f.eventually("first pass", func() error {
		if !mon.Synced() {
			return fmt.Errorf("not synced")
		}
		return nil
	})
	return f
}

func (f *fixture) eventually(what string, cond func() error) {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitChanges waits until the sink was told about n notable changes and
// returns them.
func (f *fixture) waitChanges(what string, n int) []compliance.Change {
	f.t.Helper()
	var got []compliance.Change
	f.eventually(what, func() error {
		for _, c := range f.sink.take() {
			if c.Notable() {
				got = append(got, c)
			}
		}
		if len(got) < n {
			return fmt.Errorf("%d notable changes, want %d", len(got), n)
		}
		return nil
	})
	time.Sleep(20 * time.Millisecond)
	for _, c := range f.sink.take() {
		if c.Notable() {
			got = append(got, c)
		}
	}
	if len(got) != n {
		f.t.Fatalf("%s: %d notable changes, want %d: %v", what, len(got), n, got)
	}
	return got
}

func TestMaliciousDigestRejudgesOnlyItsWorkloads(t *testing.T) {
	var objs []any
	for ns := range 3 {
		for i := range 10 {
			objs = append(objs, pod(fmt.Sprintf("ns%d", ns), fmt.Sprintf("p%d", i), i, nil))
		}
	}
	objs = append(objs, pod("kube-system", "exempt", 3, nil))
	f := start(t, 0, objs...)
	if n := len(f.mon.States()); n != 30 {
		t.Fatalf("%d workloads decided, want 30 (kube-system exempt)", n)
	}
	for _, s := range f.mon.States() {
		if s.Action != compliance.ActionPass {
			t.Fatalf("%s: %s before any change", s.Key(), s.Action)
		}
	}
	ctx := context.Background()
	if err := f.store.Import(ctx, nil, map[string]string{digest(3): "cryptominer"}); err != nil {
		t.Fatal(err)
	}
	f.reader.Refresh()
	got := f.waitChanges("malicious", 3)
	for _, c := range got {
		if c.Key.Name != "p3" || c.Kind() != "violating" || c.Cause.Trigger != compliance.TriggerMalicious || c.New.Action != compliance.ActionBlock {
			t.Errorf("change %s %s %+v action %s", c.Key, c.Kind(), c.Cause, c.New.Action)
		}
	}
	for ns := range 3 {
		if v := testutil.ToFloat64(metricVec(t, f.reg, fmt.Sprintf("ns%d", ns), "block")); v != 1 {
			t.Errorf("gauge ns%d block = %v, want 1", ns, v)
		}
	}
	if _, err := f.store.ClearMalicious(ctx, digest(3)); err != nil {
		t.Fatal(err)
	}
	f.reader.Refresh()
	for _, c := range f.waitChanges("cleared", 3) {
		if c.Kind() != "resolved" || c.New.ResolvedAt.IsZero() {
			t.Errorf("change %s %s, want resolved", c.Key, c.Kind())
		}
	}
}

func metricVec(t *testing.T, reg *prometheus.Registry, ns, action string) prometheus.Collector {
	t.Helper()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "imagegate_runtime_violating_workloads" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == ns && labels["action"] == action {
				g.Set(m.GetGauge().GetValue())
			}
		}
	}
	return g
}

func TestPolicyChangeAndAttestorOnlyChange(t *testing.T) {
	var objs []any
	for i := range 5 {
		objs = append(objs, pod("a", fmt.Sprintf("p%d", i), i, nil))
	}
	f := start(t, 0, objs...)
	tightened := strategies + `---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-app1}
spec: {strategyId: 3, ruleAction: 2, imageName: ["app1"]}
`
	f.engines.Swap(engine(t, tightened, 0))
	got := f.waitChanges("tightened", 1)
	if c := got[0]; c.Key.Name != "p1" || c.Cause.Trigger != compliance.TriggerPolicy || !strings.Contains(c.Cause.Detail, "OpaStrategy/block-app1") {
		t.Errorf("change %s %+v", c.Key, c.Cause)
	}
	if ks := f.mon.WithStrategy(3); len(ks) != 1 || !ks[inventory.Key{Namespace: "a", Kind: "Pod", Name: "p1"}] {
		t.Errorf("strategy index %v", ks)
	}
	f.engines.Swap(engine(t, strategies, 0))
	if c := f.waitChanges("loosened", 1)[0]; c.Kind() != "resolved" {
		t.Errorf("%s %s, want resolved", c.Key, c.Kind())
	}
}

func TestScanAgeExpires(t *testing.T) {
	// Scans are a moment old; with a max age of 2s they expire soon after
	// the first decision, and the workload turns unscanned (alert) by time alone.
	g := start(t, 2*time.Second, pod("b", "p1", 1, nil))
	if s, _ := g.mon.State(inventory.Key{Namespace: "b", Kind: "Pod", Name: "p1"}); s == nil || s.Action != compliance.ActionPass {
		t.Fatalf("fresh scan: %+v", s)
	}
	c := g.waitChanges("aged", 1)[0]
	if c.Cause.Trigger != compliance.TriggerScanAge || c.New.Action != compliance.ActionAlert {
		t.Errorf("%s %+v %s", c.Key, c.Cause, c.New.Action)
	}
	// A new scan resolves it.
	if err := g.store.Import(context.Background(), []*scan.Record{{Digest: digest(1), Scan: facts.Scan{ScannedAt: time.Now(), Source: "test"}}}, nil); err != nil {
		t.Fatal(err)
	}
	g.reader.Refresh()
	if c := g.waitChanges("rescanned", 1)[0]; c.Kind() != "resolved" || c.Cause.Trigger != compliance.TriggerScan {
		t.Errorf("%s %s %+v", c.Key, c.Kind(), c.Cause)
	}
}

func TestDeploymentPodsAreOneWorkload(t *testing.T) {
	ctl := true
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "web-1", UID: "rs1",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "d1", Controller: &ctl}}}}
	owner := &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs1", Controller: &ctl}
	f := start(t, 0, rs, pod("a", "web-1-x", 2, owner), pod("a", "web-1-y", 2, owner), pod("a", "solo", 4, nil))
	states := f.mon.States()
	if len(states) != 2 {
		t.Fatalf("%d workloads, want 2 (the Deployment and the bare pod)", len(states))
	}
	var dep *compliance.State
	for _, s := range states {
		if s.Kind == "Deployment" {
			dep = s
		}
	}
	if dep == nil || dep.Name != "web" || dep.Pods != 2 {
		t.Fatalf("deployment state %+v", dep)
	}
	// Deleting a pod changes the workload; deleting both makes it gone.
	ctx := context.Background()
	f.client.CoreV1().Pods("a").Delete(ctx, "web-1-x", metav1.DeleteOptions{})
	f.client.CoreV1().Pods("a").Delete(ctx, "web-1-y", metav1.DeleteOptions{})
	f.eventually("gone", func() error {
		if _, ok := f.mon.State(inventory.Key{Namespace: "a", Kind: "Deployment", Name: "web"}); ok {
			return fmt.Errorf("still tracked")
		}
		return nil
	})
}

// reconciler is a recorder that also counts reconciliations.
type reconciler struct {
	recorder
	reconciled atomic.Int64
}

func (r *reconciler) Reconcile(_ context.Context, states []*compliance.State) {
	r.reconciled.Store(int64(len(states)))
}

// A replica that does not hold the Lease decides but reports nothing; once
// it holds it, its sinks are reconciled with every state, and it reports.
func TestOnlyTheLeaderReports(t *testing.T) {
	var leader atomic.Bool
	rec := &reconciler{}
	f := startWith(t, 0, []compliance.Option{compliance.WithLeader(leader.Load), compliance.WithSinks(rec)}, pod("a", "p0", 0, nil), pod("a", "p1", 1, nil))
	ctx := context.Background()
	f.store.Import(ctx, nil, map[string]string{digest(0): "x"})
	f.reader.Refresh()
	f.eventually("decided as a follower", func() error {
		if s, _ := f.mon.State(inventory.Key{Namespace: "a", Kind: "Pod", Name: "p0"}); s == nil || s.Action != compliance.ActionBlock {
			return fmt.Errorf("state %+v", s)
		}
		return nil
	})
	if n := len(rec.take()) + len(f.sink.take()); n != 0 {
		t.Errorf("a follower reported %d changes", n)
	}
	if v := testutil.ToFloat64(metricVec(t, f.reg, "a", "block")); v != 0 {
		t.Errorf("a follower exports the gauge: %v", v)
	}
	leader.Store(true)
	f.eventually("reconciled", func() error {
		if n := rec.reconciled.Load(); n != 2 {
			return fmt.Errorf("reconciled with %d states", n)
		}
		return nil
	})
	f.eventually("gauge", func() error {
		if v := testutil.ToFloat64(metricVec(t, f.reg, "a", "block")); v != 1 {
			return fmt.Errorf("gauge %v", v)
		}
		return nil
	})
	f.store.ClearMalicious(ctx, digest(0))
	f.reader.Refresh()
	if c := f.waitChanges("resolved as the leader", 1)[0]; c.Kind() != "resolved" {
		t.Errorf("%s %s", c.Key, c.Kind())
	}
}
