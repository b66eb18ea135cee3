package scan

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/workload"
	"github.com/prometheus/client_golang/prometheus"
)

func testScan(id string, findings int) *facts.Scan {
	s := &facts.Scan{ScannedAt: time.Unix(1700000000, 0).UTC(), Source: "trivy"}
	for j := range findings {
		s.Findings = append(s.Findings, facts.Finding{Category: facts.Vul, ID: fmt.Sprintf("%s-%d", id, j), Level: "high", Class: "cve", Name: "pkg"})
	}
	return s
}

func testDigest(i int) string { return fmt.Sprintf("sha256:%064x", i) }

func image(i int) workload.Image {
	return workload.ParseImage("registry.example.com/app@" + testDigest(i))
}

// fakeStore is a Getter over a map, counting reads (unit-test speed; the
// stores themselves are tested by storetest).
type fakeStore struct {
	scans map[string]*facts.Scan
	err   error
	reads int
}

func (f *fakeStore) Get(_ context.Context, key string) (*facts.Scan, error) {
	f.reads++
	return f.scans[key], f.err
}

func TestIndexBounds(t *testing.T) {
	for _, c := range []struct {
		name     string
		lim      IndexLimits
		findings int
	}{
		{"entries", IndexLimits{Entries: 100}, 3},
		{"bytes", IndexLimits{Bytes: 64 << 10}, 30},
		{"bytes, strings only", IndexLimits{Bytes: 16 << 10}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := newIndex(c.lim, &fakeStore{})
			for i := range 2000 {
				x.set("d:"+testDigest(i), testScan(fmt.Sprint("CVE-", i), c.findings))
				if x.Len() > x.lim.Entries || x.Bytes() > x.lim.Bytes {
					t.Fatalf("after %d records: %d held, %d bytes; limits %+v", i+1, x.Len(), x.Bytes(), x.lim)
				}
			}
			if x.Evicted() == 0 || x.Len() == 0 {
				t.Errorf("%d held, %d evicted", x.Len(), x.Evicted())
			}
			if len(x.hand) > 2*x.Len()+64 {
				t.Errorf("the CLOCK keeps %d records for %d held", len(x.hand), x.Len())
			}
		})
	}
}

// A record looked up since the CLOCK last passed survives the next
// evictions; records nobody asks about go first.
func TestIndexEvictsLeastRecentlyUsed(t *testing.T) {
	store := &fakeStore{scans: map[string]*facts.Scan{}}
	x := newIndex(IndexLimits{Entries: 50}, store)
	hot := "d:" + testDigest(0)
	store.scans[hot] = testScan("HOT", 2)
	x.set(hot, store.scans[hot])
	for i := 1; i < 1000; i++ {
		key := "d:" + testDigest(i)
		store.scans[key] = testScan(fmt.Sprint("CVE-", i), 2)
		x.set(key, store.scans[key])
		if s, _, err := x.Find(context.Background(), image(0), ""); err != nil || s == nil || s.Findings[0].ID != "HOT-0" {
			t.Fatalf("after %d: %+v %v", i, s, err)
		}
	}
	if store.reads != 0 {
		t.Errorf("the record looked up all along was evicted and read back %d times", store.reads)
	}
	if s, _, err := x.Find(context.Background(), image(1), ""); err != nil || s == nil || s.Findings[0].ID != "CVE-1-0" || store.reads != 1 {
		t.Errorf("an evicted record: %+v %v after %d reads", s, err, store.reads)
	}
}

// The attack: flood the index with scans so that a blocked image's scan, or
// its malicious mark, is evicted and the image passes as unscanned.
func TestEvictionNeverAllows(t *testing.T) {
	ctx := context.Background()
	victim := "d:" + testDigest(0)
	store := &fakeStore{scans: map[string]*facts.Scan{victim: testScan("CRITICAL", 1)}}
	x := newIndex(IndexLimits{Entries: 10}, store)
	x.set(victim, store.scans[victim])
	x.setMalicious(testDigest(0), "known bad")
	for i := 1; i < 500; i++ {
		x.setMalicious(testDigest(i), "bad "+fmt.Sprint(i))
		x.set("d:"+testDigest(i), testScan(fmt.Sprint("CVE-", i), 30))
	}
	if s, _ := x.Lookup(image(0), ""); s != nil {
		t.Fatal("the victim's scan was not evicted; the test proves nothing")
	}
	for i := range 500 {
		if _, reason := x.Lookup(image(i), ""); reason == "" {
			t.Fatalf("the malicious mark of %d was evicted", i)
		}
	}
	s, reason, err := x.Find(ctx, image(0), "")
	if err != nil || s == nil || s.Findings[0].ID != "CRITICAL-0" || reason != "known bad" {
		t.Errorf("evicted scan read back: %+v %q %v", s, reason, err)
	}

	// The store cannot be read: the lookup fails, it does not say unscanned.
	x.set("d:"+testDigest(1000), testScan("X", 30)) // evicts the victim again
	store.err = errors.New("connection refused")
	for _, lookup := range []func() error{
		func() error { _, _, err := x.Find(ctx, image(0), ""); return err },
		func() error {
			_, err := NewSource(x).Facts(ctx, facts.Request{Images: []workload.Image{image(0)}})
			return err
		},
	} {
		if err := lookup(); !errors.Is(err, ErrScanUnavailable) {
			t.Errorf("with the store down: %v; want ErrScanUnavailable", err)
		}
	}
}

// An index without a store to read back from (NewIndex) refuses to guess
// once it evicted.
func TestEvictionWithoutStoreFailsClosed(t *testing.T) {
	x := newIndex(IndexLimits{Entries: 1}, nil)
	x.set("d:"+testDigest(0), testScan("A", 1))
	x.set("d:"+testDigest(1), testScan("B", 1))
	if _, _, err := x.Find(context.Background(), image(0), ""); !errors.Is(err, ErrScanUnavailable) {
		t.Errorf("got %v", err)
	}
}

// The file store read back after eviction, and a store file gone or
// replaced by garbage fails the lookup.
func TestFileReadBack(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "scans.db")
	var recs []*Record
	for i := range 10 {
		recs = append(recs, &Record{Digest: testDigest(i), Scan: *testScan(fmt.Sprint("CVE-", i), 2)})
	}
	if err := Import(path, recs, nil); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(ctx, NewFile(path), WithIndexLimits(IndexLimits{Entries: 3}))
	if err != nil {
		t.Fatal(err)
	}
	if s, _, err := r.Index().Find(ctx, image(0), ""); err != nil || s == nil || s.Findings[0].ID != "CVE-0-0" {
		t.Fatalf("read back: %+v %v", s, err)
	}
	for _, corrupt := range []func() error{
		func() error { return writeFile(path, []byte("not a database")) },
		func() error { return removeFile(path) },
	} {
		if err := corrupt(); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			s, _, err := r.Index().Find(ctx, image(i), "")
			if s == nil && !errors.Is(err, ErrScanUnavailable) {
				t.Errorf("image %d with the store unreadable: unscanned, no error", i)
			}
		}
	}
}

// Strings of replaced and evicted records do not stay in the string table
// for good.
func TestIndexCompactsStrings(t *testing.T) {
	x := newIndex(IndexLimits{Entries: 10, Bytes: 1 << 20}, &fakeStore{})
	for i := range 20000 {
		x.set("d:"+testDigest(i%10), testScan(fmt.Sprint("UNIQUE-", i), 5))
	}
	if x.strBytes > x.lim.Bytes/2 || x.Bytes() > x.lim.Bytes {
		t.Errorf("strings %d bytes, total %d; limit %d", x.strBytes, x.Bytes(), x.lim.Bytes)
	}
	for i := range 10 {
		if s, _ := x.Lookup(image(i), ""); s == nil || s.Findings[0].ID != fmt.Sprint("UNIQUE-", 19990+i, "-0") {
			t.Fatalf("after compaction, image %d: %+v", i, s)
		}
	}
}

func TestPackRoundTrip(t *testing.T) {
	for _, c := range [][5]uint32{{0, 0, 0, 0, 0}, {4, 2, 2, 1<<idBits - 1, 1<<idBits - 1}, {1, 1, 1, 12345, 678}} {
		cat, lvl, cls, id, name := unpack(pack(uint8(c[0]), uint8(c[1]), uint8(c[2]), c[3], c[4]))
		if [5]uint32{uint32(cat), uint32(lvl), uint32(cls), id, name} != c {
			t.Errorf("%v came back as %v %v %v %v %v", c, cat, lvl, cls, id, name)
		}
	}
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }
func removeFile(path string) error          { return os.Remove(path) }

func TestSHA256Key(t *testing.T) {
	for _, c := range []struct {
		digest string
		ok     bool
	}{
		{testDigest(0xabc), true},
		{"sha256:" + strings.Repeat("A", 64), false}, // not canonical: kept under its text
		{"sha256:" + strings.Repeat("a", 63), false},
		{"sha512:" + strings.Repeat("a", 64), false},
		{"sha256:" + strings.Repeat("g", 64), false},
	} {
		k, ok := sha256Key(c.digest)
		if ok != c.ok || (ok && "sha256:"+hex.EncodeToString(k[:]) != c.digest) {
			t.Errorf("%q: %x %v", c.digest, k, ok)
		}
	}
	d := testDigest(7)
	if n := testing.AllocsPerRun(100, func() { sha256Key(d) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// Lookups racing with imports that evict: an image whose scan is in the
// store is never answered as unscanned.
func TestFindDuringEviction(t *testing.T) {
	store := &syncStore{scans: map[string]*facts.Scan{}}
	for i := range 200 {
		store.scans["d:"+testDigest(i)] = testScan(fmt.Sprint("CVE-", i), 3)
	}
	x := newIndex(IndexLimits{Entries: 20}, store)
	for i := range 200 { // the initial load, as NewReader does
		x.set("d:"+testDigest(i), store.scans["d:"+testDigest(i)])
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := range 20 {
			for i := range 200 {
				x.set("d:"+testDigest((i+round)%200), store.scans["d:"+testDigest((i+round)%200)])
			}
		}
	}()
	ctx := context.Background()
	for n := 0; ; n++ {
		select {
		case <-done:
			return
		default:
		}
		i := n % 200
		if s, _, err := x.Find(ctx, image(i), ""); err != nil || s == nil || s.Findings[0].ID != fmt.Sprint("CVE-", i, "-0") {
			t.Fatalf("image %d: %+v %v", i, s, err)
		}
	}
}

// syncStore is a fakeStore safe for concurrent reads.
type syncStore struct{ scans map[string]*facts.Scan }

func (s *syncStore) Get(_ context.Context, key string) (*facts.Scan, error) { return s.scans[key], nil }

func TestIndexMetrics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scans.db")
	var recs []*Record
	for i := range 5 {
		recs = append(recs, &Record{Digest: testDigest(i), Scan: *testScan(fmt.Sprint("CVE-", i), 2)})
	}
	if err := Import(path, recs, nil); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if _, err := NewReader(context.Background(), NewFile(path), WithIndexLimits(IndexLimits{Entries: 2}), WithReaderRegisterer(reg)); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	if got["imagegate_scan_index_records"] != 2 || got["imagegate_scan_index_evictions_total"] != 3 || got["imagegate_scan_index_bytes"] <= 0 {
		t.Errorf("metrics %v", got)
	}
}
