package rego

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

const testKey = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE17L1CDixpC6Umq7sna4KFil3Hd2i
Vwa/O2oifOFPIoRfQXLnmx0Zky5fhVSiU/lkeX+0ojts/CFlxIp7EYr+xw==
-----END PUBLIC KEY-----
`

// TestPlanMatchesTopdown evaluates random policy sets and requests with the
// plan executor and with OPA's topdown evaluator and requires the same
// decision, byte for byte (the YAML decision cases do the same on every
// hand-written case). Random inputs reach combinations nobody wrote down:
// mixed actions on one image, several reasons, missing and excused
// attestors, stale scans, exempt tags.
func TestPlanMatchesTopdown(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[Action]int{}
	for round := range 30 {
		objs := randomPolicies(r)
		snap, err := policy.NewSnapshot(objs...)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		e, err := New(ctx, snap, WithClusterID("c1"), WithDecisionCache(0),
			WithMaxScanAge(time.Duration(r.IntN(2))*72*time.Hour),
			WithVerificationErrorsAllowed(r.IntN(2) == 0),
			WithClock(func() time.Time { return time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC) }))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if e, err = CrossChecked(ctx, e); err != nil {
			t.Fatal(err)
		}
		for req := range 20 {
			in := randomInput(r)
			d, err := e.Eval(ctx, in)
			if err != nil {
				t.Fatalf("round %d request %d: %v", round, req, err)
			}
			if len(d.Images) != len(in.Images) {
				t.Fatalf("round %d request %d: %d verdicts for %d images", round, req, len(d.Images), len(in.Images))
			}
			for _, img := range d.Images {
				seen[img.Action]++
			}
		}
	}
	// The generator must reach every outcome, or the comparison proves little.
	for _, a := range []Action{Pass, Alert, Block, Allow, Unsigned} {
		if seen[a] == 0 {
			t.Errorf("no random request ended in %s (%v)", a, seen)
		}
	}
	t.Logf("outcomes: %v", seen)
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func some[T any](r *rand.Rand, n int, xs ...T) []T {
	var out []T
	for range r.IntN(n + 1) {
		out = append(out, pick(r, xs...))
	}
	return out
}

var (
	levels     = []string{"high", "medium", "low"}
	categories = []string{facts.Vul, facts.Baseline, facts.MaliciousFile, facts.SensitiveFile, facts.BuildRisk}
	findingIDs = []string{"CVE-1", "CVE-2", "weak_pw", "ak_leak", "trojan"}
	classes    = []string{"cve", "app"}
)

func randomPolicies(r *rand.Rand) []policy.Object {
	meta := func(kind, name string) (policy.TypeMeta, policy.ObjectMeta) {
		return policy.TypeMeta{APIVersion: policy.APIVersion, Kind: kind}, policy.ObjectMeta{Name: name}
	}
	var objs []policy.Object
	for _, name := range []string{"ci", "qa"} {
		tm, om := meta(policy.KindAttestor, name)
		objs = append(objs, &policy.Attestor{TypeMeta: tm, Metadata: om, Spec: policy.AttestorSpec{PublicKeys: []string{testKey}}})
	}
	for i := range r.IntN(3) {
		tm, om := meta(policy.KindBinarySecurityPolicy, fmt.Sprintf("p%d", i))
		objs = append(objs, &policy.BinarySecurityPolicy{TypeMeta: tm, Metadata: om, Spec: policy.BinarySecurityPolicySpec{
			Policy:   policy.SignaturePolicy{RequiredAttestors: []string{pick(r, "ci", "qa")}},
			Clusters: []policy.ClusterScope{{ClusterID: pick(r, "c1", "c2"), Namespaces: some(r, 2, "default", "prod", "*")}},
			Status:   pick(r, "", policy.StatusDisabled),
		}})
	}
	items := func() []policy.Item {
		var out []policy.Item
		for _, id := range some(r, 2, findingIDs...) {
			out = append(out, policy.Item{ID: id})
		}
		return out
	}
	risk := func() *policy.RiskRule {
		if r.IntN(3) > 0 {
			return nil
		}
		return &policy.RiskRule{RiskLevel: some(r, 2, levels...), Item: items()}
	}
	for i := range 1 + r.IntN(12) {
		tm, om := meta(policy.KindOpaStrategy, fmt.Sprintf("s%d", i))
		s := &policy.OpaStrategy{TypeMeta: tm, Metadata: om, Spec: policy.OpaStrategySpec{
			StrategyID:     int64(100 + i),
			RuleAction:     1 + r.IntN(3),
			UnScanedImage:  r.IntN(4) == 0,
			MaliciousImage: r.IntN(4) == 0,
			ImageName:      some(r, 2, "app", "team/app", "registry.example.com/team/app", "ng*", "*cart"),
			Label:          some(r, 1, "team:a", "team", "tier=web"),
			WhiteList:      some(r, 1, "1.0", "v*", "debug"),
			AlarmDetail: policy.AlarmDetail{
				Baseline: risk(), MaliciousFile: risk(), SensitiveFile: risk(), BuildRisk: risk(),
			},
		}}
		if r.IntN(2) == 0 {
			var cls []policy.Item
			for _, c := range some(r, 1, classes...) {
				cls = append(cls, policy.Item{ID: c})
			}
			s.Spec.AlarmDetail.Vul = &policy.VulRule{RiskLevel: some(r, 2, levels...), Item: items(), RiskClass: cls}
		}
		if r.IntN(3) > 0 {
			s.Spec.Scopes = []policy.OpaScope{{ClusterID: pick(r, "c1", "c2"), AllNamespace: r.IntN(2), NamespaceList: some(r, 2, "default", "prod")}}
		} else {
			s.Spec.ClusterID = pick(r, "c1", "")
		}
		objs = append(objs, s)
	}
	return objs
}

func randomInput(r *rand.Rand) Input {
	in := Input{Namespace: pick(r, "default", "prod", "dev"), Labels: map[string]string{}}
	for _, kv := range some(r, 2, "team=a", "team=b", "tier=web") {
		k, v, _ := strings.Cut(kv, "=")
		in.Labels[k] = v
	}
	for range 1 + r.IntN(3) {
		in.Images = append(in.Images, workload.ParseImage(pick(r,
			"registry.example.com/team/app:1.0", "registry.example.com/shop/cart:v2", "nginx:debug", "app", "bad image")))
		f := &facts.Image{Attestors: some(r, 2, "ci", "qa"), Malicious: r.IntN(8) == 0}
		if r.IntN(3) == 0 {
			f.AttestorErrors = map[string]string{pick(r, "ci", "qa"): "no matching signatures"}
		}
		if r.IntN(4) == 0 {
			f.Unverifiable = []string{pick(r, "ci", "qa")}
		}
		if r.IntN(4) > 0 {
			f.Scan = &facts.Scan{ScannedAt: time.Date(2026, 11, 20-r.IntN(10), 0, 0, 0, 0, time.UTC), Malicious: r.IntN(10) == 0}
			for range r.IntN(4) {
				f.Scan.Findings = append(f.Scan.Findings, facts.Finding{
					Category: pick(r, categories...), ID: pick(r, findingIDs...), Level: pick(r, levels...), Class: pick(r, classes...),
				})
			}
		} else if r.IntN(2) == 0 {
			f.ScanNote = "attestation signed by the wrong attestor"
		}
		in.Facts = append(in.Facts, f)
	}
	return in
}

// A cancelled request gets an error, never a decision: callers fail closed.
func TestPlanCancelled(t *testing.T) {
	snap, err := policy.NewSnapshot(randomPolicies(rand.New(rand.NewPCG(3, 4)))...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), snap, WithDecisionCache(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := e.Eval(ctx, randomInput(rand.New(rand.NewPCG(5, 6))))
	if err == nil || d != nil {
		t.Fatalf("Eval with a cancelled context = %v, %v; want an error", d, err)
	}
}

// The rules that read neither input nor data are found and computed once,
// when the plan is made; the others are not.
func TestPlanConstants(t *testing.T) {
	p, err := decisionPlan()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"g0.data.imagegate.decision.passed": true,
		"g0.data.imagegate.decision.denies": true,
		"g0.data.imagegate.decision.images": false,
		"g0.data.imagegate.decision.result": false,
	} {
		f, ok := p.funcs[name]
		if !ok {
			t.Fatalf("no function %s in the plan", name)
		}
		if f.constant != want || (want && f.value == nil) {
			t.Errorf("%s: constant %v (value %v), want %v", name, f.constant, f.value, want)
		}
	}
}

// Evaluations share pooled machines whose slabs the next evaluation reuses:
// concurrent requests must each get exactly the decision they get alone.
func TestPlanConcurrent(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	snap, err := policy.NewSnapshot(randomPolicies(r)...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(ctx, snap, WithClusterID("c1"), WithDecisionCache(0))
	if err != nil {
		t.Fatal(err)
	}
	inputs := make([]Input, 40)
	want := make([]*Decision, len(inputs))
	for i := range inputs {
		inputs[i] = randomInput(r)
		if want[i], err = e.Eval(ctx, inputs[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 50 {
				i := (g*7 + round) % len(inputs)
				d, err := e.Eval(ctx, inputs[i])
				if err != nil || !reflect.DeepEqual(d, want[i]) {
					errs <- fmt.Sprintf("goroutine %d, input %d: %v\ngot  %+v\nwant %+v", g, i, err, d, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}
