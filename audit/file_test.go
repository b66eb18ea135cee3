package audit_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/webhook"
	"github.com/prometheus/client_golang/prometheus"
)

func readLines(t *testing.T, path string) []audit.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev audit.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, ev)
	}
	return out
}

// TestFileSinkAfterAdmissions sends real AdmissionReviews through the
// webhook handler and reads the JSON lines the file sink wrote.
func TestFileSinkAfterAdmissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	sink, err := audit.NewFileSink(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := audit.NewRecorder([]audit.Sink{sink}, audit.WithClusterID("c1"))
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, webhook.WithAuditor(rec))
	admit(t, h, podReview("u-pass", "default", "fine", false, "registry.example.com/team/ok:1"))
	admit(t, h, podReview("u-block", "default", "web", true, "bad-app:1", "registry.example.com/team/ok:1"))
	admit(t, h, podReview("u-alert", "default", "vuln", false, "registry.example.com/team/vuln:1"))
	admit(t, h, podReview("u-allow", "default", "trusted", false, "bad-trusted:3"))
	admit(t, h, podReview("u-unsigned", "secure", "app", false, "registry.example.com/team/app:2"))
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	events := readLines(t, path)
	byUID := map[string]audit.Event{}
	for _, ev := range events {
		byUID[ev.UID] = ev
	}
	if len(events) != 4 {
		t.Fatalf("%d events, want 4 (no plain pass): %+v", len(events), events)
	}
	if _, ok := byUID["u-pass"]; ok {
		t.Error("a plain pass became an event")
	}
	tests := []struct {
		uid, decision, action, image, digest string
		strategies                           []audit.StrategyHit
		missing                              []audit.MissingAttestor
		findings                             []string
		dryRun                               bool
	}{
		{uid: "u-block", decision: "denied", action: "block", image: "bad-app:1", strategies: []audit.StrategyHit{{ID: 1, Name: "block bad", Action: "block"}}, dryRun: true},
		{uid: "u-alert", decision: "allowed", action: "alert", image: "registry.example.com/team/vuln:1",
			digest:     "sha256:1111111111111111111111111111111111111111111111111111111111111111",
			strategies: []audit.StrategyHit{{ID: 2, Name: "alert high vulns", Action: "alert"}}, findings: []string{"Vul CVE-2024-1234 high"}},
		{uid: "u-allow", decision: "allowed", action: "allow", image: "bad-trusted:3",
			strategies: []audit.StrategyHit{{ID: 1, Name: "block bad", Action: "block"}, {ID: 3, Name: "trusted", Action: "allow"}}},
		{uid: "u-unsigned", decision: "denied", action: "unsigned", image: "registry.example.com/team/app:2",
			digest:  "sha256:2222222222222222222222222222222222222222222222222222222222222222",
			missing: []audit.MissingAttestor{{Attestor: "ci", Reason: "no matching signatures"}}},
	}
	for _, tt := range tests {
		t.Run(tt.uid, func(t *testing.T) {
			ev, ok := byUID[tt.uid]
			if !ok {
				t.Fatal("no event")
			}
			if ev.Decision != tt.decision || !slices.Equal(ev.Actions, []string{tt.action}) || ev.DryRun != tt.dryRun {
				t.Errorf("decision %s actions %v dryRun %v, want %s [%s] %v", ev.Decision, ev.Actions, ev.DryRun, tt.decision, tt.action, tt.dryRun)
			}
			if ev.ClusterID != "c1" || ev.Kind != "Pod" || ev.Operation != "CREATE" || ev.User.Username != "alice" ||
				!slices.Equal(ev.User.Groups, []string{"dev", "system:authenticated"}) || ev.ID == "" || time.Since(ev.Time) > time.Minute {
				t.Errorf("request fields: %+v", ev)
			}
			img := ev.Images[0]
			if img.Image != tt.image || img.Action != tt.action || img.Digest != tt.digest {
				t.Errorf("image %+v", img)
			}
			if !slices.Equal(img.Strategies, tt.strategies) {
				t.Errorf("strategies %+v, want %+v", img.Strategies, tt.strategies)
			}
			if !slices.Equal(img.MissingAttestors, tt.missing) {
				t.Errorf("missing %+v, want %+v", img.MissingAttestors, tt.missing)
			}
			var fs []string
			for _, f := range img.Findings {
				fs = append(fs, f.Category+" "+f.ID+" "+f.Level)
			}
			if !slices.Equal(fs, tt.findings) {
				t.Errorf("findings %v, want %v", fs, tt.findings)
			}
			if len(img.Reasons) == 0 {
				t.Error("no reasons")
			}
		})
	}
	if ev := byUID["u-block"]; len(ev.Images) != 2 || ev.Images[1].Action != "pass" || len(ev.Violations) != 1 || !strings.Contains(ev.Violations[0], "bad-app:1") {
		t.Errorf("block event images/violations: %+v", ev)
	}
}

// TestFileSinkRotates rotates by size and keeps only max backups.
func TestFileSinkRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	sink, err := audit.NewFileSink(path, 600, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		ev := &audit.Event{ID: strings.Repeat("0", 31) + string(rune('a'+i%6)), Namespace: "default", Decision: "denied", Actions: []string{"block"}}
		if err := sink.Write([]*audit.Event{ev}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // distinct backup names
	}
	sink.Close()
	backups, _ := filepath.Glob(path + ".*")
	if len(backups) != 2 {
		t.Errorf("%d backups, want 2: %v", len(backups), backups)
	}
	for _, p := range append(backups, path) {
		st, err := os.Stat(p)
		if err != nil || st.Size() > 600 || st.Size() == 0 {
			t.Errorf("%s: %v size %d", p, err, st.Size())
		}
		readLines(t, p) // whole JSON lines only
	}
}

// TestFileSinkFullDisk writes to /dev/full: the write fails, is counted and
// logged, and admission goes on.
func TestFileSinkFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	sink, err := audit.NewFileSink("/dev/full", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	rec, err := audit.NewRecorder([]audit.Sink{sink}, audit.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, webhook.WithAuditor(rec))
	for range 3 {
		w := admit(t, h, podReview("u", "default", "web", false, "bad-app:1"))
		if !strings.Contains(w.Body.String(), `"allowed":false`) {
			t.Fatalf("admission changed: %s", w.Body)
		}
	}
	rec.Close()
	mfs, _ := reg.Gather()
	var failures float64
	for _, mf := range mfs {
		if mf.GetName() == "imagegate_audit_sink_errors_total" {
			failures = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if failures < 1 {
		t.Errorf("sink errors %v, want ≥ 1", failures)
	}
}
