// Package storetest holds the rules every scan.Store must keep, as tests
// any implementation runs against itself (the bbolt file in package scan,
// PostgreSQL in package pgstore), so that the stores cannot drift apart.
package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/scan"
	"github.com/imagegate/imagegate/workload"
)

// Subject is a store under test: it is written to and followed.
type Subject interface {
	scan.Store
	scan.ChangeLog
}

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func digest(c string) string { return "sha256:" + strings.Repeat(c, 64) }

func record(d, ref string, at time.Time, cves ...string) *scan.Record {
	r := &scan.Record{Digest: d, Ref: ref, Scan: facts.Scan{ScannedAt: at, Source: "trivy"}}
	for _, id := range cves {
		r.Scan.Findings = append(r.Scan.Findings, facts.Finding{Category: "Vul", ID: id, Level: "high", Class: "cve"})
	}
	return r
}

// lookup is what a reader of s knows about an image.
func lookup(t *testing.T, s Subject, image string) (*facts.Scan, string) {
	t.Helper()
	r, err := scan.NewReader(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return r.Index().Lookup(workload.ParseImage(image), "")
}

func findings(s *facts.Scan) string {
	if s == nil {
		return "unscanned"
	}
	var ids []string
	for _, f := range s.Findings {
		ids = append(ids, f.ID)
	}
	return strings.Join(ids, ",")
}

// Run runs the rules against stores made by open (a new, empty one each).
func Run(t *testing.T, open func(t *testing.T) Subject) {
	ctx := context.Background()
	a, b := digest("a"), digest("b")
	repo := "registry.example.com/shop/app"
	byDigest, byTag := repo+"@"+a, repo+":1.0"

	t.Run("newest scan wins", func(t *testing.T) {
		for _, c := range []struct {
			name        string
			second      *scan.Record
			refuse      bool
			wantErr     bool
			wantStored  time.Time
			wantFinding string
		}{
			{"newer replaces", record(a, "", t0.Add(time.Hour), "CVE-NEW"), true, false, t0.Add(time.Hour), "CVE-NEW"},
			{"older refused", record(a, "", t0.Add(-time.Hour)), true, true, t0, "CVE-1"},
			{"older skipped without RefuseStale", record(a, "", t0.Add(-time.Hour)), false, false, t0, "CVE-1"},
			{"same time, other findings, refused", record(a, "", t0, "CVE-2"), true, true, t0, "CVE-1"},
			{"the stored scan again changes nothing", record(a, "", t0, "CVE-1"), true, false, t0, "CVE-1"},
			{"a nanosecond newer replaces", record(a, "", t0.Add(time.Nanosecond), "CVE-NS"), true, false, t0.Add(time.Nanosecond), "CVE-NS"},
		} {
			t.Run(c.name, func(t *testing.T) {
				s := open(t)
				if err := s.Import(ctx, []*scan.Record{record(a, "", t0, "CVE-1")}, nil); err != nil {
					t.Fatal(err)
				}
				var opts []scan.ImportOption
				if c.refuse {
					opts = append(opts, scan.RefuseStale())
				}
				err := s.Import(ctx, []*scan.Record{c.second}, nil, opts...)
				var stale *scan.StaleError
				if c.wantErr != (err != nil) || (c.wantErr && (!errors.As(err, &stale) || !stale.Stored.Equal(t0) || stale.Image != a)) {
					t.Fatalf("import: %v (want an error: %v)", err, c.wantErr)
				}
				got, _ := lookup(t, s, byDigest)
				if findings(got) != c.wantFinding || !got.ScannedAt.Equal(c.wantStored) {
					t.Errorf("stored %s at %s; want %s at %s", findings(got), got.ScannedAt, c.wantFinding, c.wantStored)
				}
			})
		}
	})

	t.Run("a refused report writes nothing", func(t *testing.T) {
		s := open(t)
		if err := s.Import(ctx, []*scan.Record{record(a, "", t0, "CVE-1")}, nil); err != nil {
			t.Fatal(err)
		}
		batch := []*scan.Record{record(b, "", t0, "CVE-B"), record(a, "", t0.Add(-time.Hour))}
		if err := s.Import(ctx, batch, map[string]string{digest("c"): "feed"}, scan.RefuseStale()); err == nil {
			t.Fatal("a stale record in the batch was accepted")
		}
		if got, _ := lookup(t, s, repo+"@"+b); got != nil {
			t.Errorf("the batch's other record was written: %+v", got)
		}
		if _, reason := lookup(t, s, repo+"@"+digest("c")); reason != "" {
			t.Errorf("the batch's malicious digest was written: %q", reason)
		}
		if err := s.Import(ctx, []*scan.Record{{}}, nil); err == nil {
			t.Error("a record naming no image was accepted")
		}
	})

	t.Run("a tag keeps its newest scan", func(t *testing.T) {
		s := open(t)
		if err := s.Import(ctx, []*scan.Record{record(a, "index.docker.io/"+byTag, t0, "CVE-A")}, nil); err != nil {
			t.Fatal(err)
		}
		// b named the same tag earlier: stored under its digest only.
		if err := s.Import(ctx, []*scan.Record{record(b, "index.docker.io/"+byTag, t0.Add(-time.Hour), "CVE-B")}, nil, scan.RefuseStale()); err != nil {
			t.Fatalf("a record whose tag holds a newer scan was refused: %v", err)
		}
		if got, _ := lookup(t, s, repo+"@"+b); findings(got) != "CVE-B" {
			t.Errorf("by digest b: %s", findings(got))
		}
		r, err := scan.NewReader(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		img := workload.Image{Canonical: "index.docker.io/" + byTag}
		if got, _ := r.Index().Lookup(img, ""); findings(got) != "CVE-A" {
			t.Errorf("by tag: %s, want the newer CVE-A", findings(got))
		}
	})

	t.Run("malicious marks are cleared only explicitly", func(t *testing.T) {
		s := open(t)
		if err := s.Import(ctx, nil, map[string]string{a: "typosquat"}); err != nil {
			t.Fatal(err)
		}
		r, err := scan.NewReader(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name       string
			do         func() (bool, error)
			wantFound  bool
			wantReason string
		}{
			{"a newer clean report", func() (bool, error) {
				return false, s.Import(ctx, []*scan.Record{record(a, "", t0.Add(24*time.Hour))}, nil)
			}, false, "typosquat"},
			{"cleared", func() (bool, error) { return s.ClearMalicious(ctx, a) }, true, ""},
			{"cleared again: not found", func() (bool, error) { return s.ClearMalicious(ctx, a) }, false, ""},
			{"marked again", func() (bool, error) { return false, s.Import(ctx, nil, map[string]string{a: "second feed"}) }, false, "second feed"},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				found, err := st.do()
				if err != nil || found != st.wantFound {
					t.Fatalf("found %v, error %v; want found %v", found, err, st.wantFound)
				}
				if _, err := r.Refresh(); err != nil {
					t.Fatal(err)
				}
				if _, reason := r.Index().Lookup(workload.ParseImage(byDigest), ""); reason != st.wantReason {
					t.Errorf("reason %q, want %q", reason, st.wantReason)
				}
			})
		}
	})

	t.Run("changes are numbered and resumable", func(t *testing.T) {
		s := open(t)
		for i, c := range []string{"1", "2", "3"} {
			if err := s.Import(ctx, []*scan.Record{record(digest(c), "", t0.Add(time.Duration(i)*time.Minute), "CVE-"+c)}, nil); err != nil {
				t.Fatal(err)
			}
		}
		first, seq, err := s.Changes(ctx, 0, 2)
		if err != nil || len(first) != 2 {
			t.Fatalf("first page: %d changes, %v", len(first), err)
		}
		rest, last, err := s.Changes(ctx, seq, 100)
		if err != nil || len(rest) != 1 || rest[0].Key != "d:"+digest("3") || last <= seq {
			t.Fatalf("after %d: %+v (last %d), %v", seq, rest, last, err)
		}
		none, again, err := s.Changes(ctx, last, 100)
		if err != nil || len(none) != 0 || again != last {
			t.Errorf("nothing new: %d changes, last %d (want %d), %v", len(none), again, last, err)
		}
	})

	t.Run("evicted records are read back by key", func(t *testing.T) { evicted(t, open(t)) })
}

// evicted fills an index bounded to two records from the store: every
// image's scan is still found (read back from the store), malicious marks
// are all kept, and an image the store never saw stays unscanned.
func evicted(t *testing.T, s Subject) {
	ctx := context.Background()
	var recs []*scan.Record
	marks := map[string]string{}
	for i := range 20 {
		d := digest(string("0123456789abcdef"[i%16]))[:70] + string("0123456789"[i%10])
		recs = append(recs, record(d, "", t0, "CVE-"+d[len(d)-2:]))
		marks[d] = "feed " + d[len(d)-2:]
	}
	if err := s.Import(ctx, recs, marks); err != nil {
		t.Fatal(err)
	}
	r, err := scan.NewReader(ctx, s, scan.WithIndexLimits(scan.IndexLimits{Entries: 2}))
	if err != nil {
		t.Fatal(err)
	}
	idx := r.Index()
	if idx.Len() > 2 || idx.Evicted() == 0 {
		t.Fatalf("bounded to 2: %d held, %d evicted", idx.Len(), idx.Evicted())
	}
	if _, ok := any(s).(scan.Getter); !ok {
		t.Fatal("the store cannot read a key back: an evicted scan would be lost")
	}
	for _, rec := range recs {
		img := workload.ParseImage("registry.example.com/app@" + rec.Digest)
		got, reason, err := idx.Find(ctx, img, "")
		if err != nil || findings(got) != rec.Scan.Findings[0].ID || reason != marks[rec.Digest] {
			t.Errorf("%s: %s %q %v; want %s %q", rec.Digest, findings(got), reason, err, rec.Scan.Findings[0].ID, marks[rec.Digest])
		}
	}
	if idx.Len() > 2 {
		t.Errorf("records read back broke the bound: %d held", idx.Len())
	}
	got, _, err := idx.Find(ctx, workload.ParseImage("registry.example.com/app@sha256:"+strings.Repeat("ab", 32)), "")
	if got != nil || err != nil {
		t.Errorf("an image the store never saw: %+v %v", got, err)
	}
}
