package bundle

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/policy"
)

type load struct {
	snap *policy.Snapshot
	err  error
}

func TestWatchKeepsLastGoodBundle(t *testing.T) {
	f := newFixture(t)
	ref := Scheme + f.reg.Host + "/policies:live"
	first := f.push(t, writeDir(t, map[string]string{"s.yaml": strategies}), "live", f.signer)
	w := NewWatcher(f.source(t, ref))
	loads := make(chan load, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Watch(ctx, 20*time.Millisecond, func(s *policy.Snapshot, err error) { loads <- load{s, err} })
	next := func() load {
		t.Helper()
		select {
		case l := <-loads:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no load reported")
		}
		return load{}
	}
	// The status follows onLoad (what it reports is in force): poll it.
	status := func(ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok(w.Status()) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		return w.Status()
	}
	clear := func(s string) bool { return s == "" }
	l := next()
	if l.err != nil || len(l.snap.Strategies()) != 1 || status(clear) != "" {
		t.Fatalf("first bundle: %v, status %q", l.err, w.Status())
	}
	firstSnap := l.snap.Digest()

	// While the tag stays, a poll is one HEAD on the kept connection: no
	// ping, no signature or blob read.
	f.reg.Reset()
	time.Sleep(200 * time.Millisecond)
	if heads, pings, reads := f.reg.Count("HEAD /v2/policies/manifests/live"), f.reg.Count("GET /v2/"), f.reg.Count("GET"); heads < 2 || pings != 0 || reads != 0 {
		t.Fatalf("polling an unchanged tag: %d HEADs, %d pings, %d GETs; want HEADs only", heads, pings, reads)
	}

	// The registry away for a while: said once, then forgotten when the
	// same digest is back.
	f.reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	if l := next(); Result(l.err) != "error" || !strings.Contains(status(func(s string) bool { return s != "" }), "serving") {
		t.Fatalf("registry away: %v, status %q", l.err, w.Status())
	}
	f.reg.SetFault(nil)
	if l := next(); l.err != nil || l.snap.Digest() != firstSnap || status(clear) != "" {
		t.Fatalf("registry back: %v, status %q; want the same set again (the caller's error cleared)", l.err, w.Status())
	}

	// An unsigned bundle under the tag: refused once, the status says why
	// and what is still served.
	changed := strings.Replace(strategies, "strategyId: 7", "strategyId: 9", 1)
	unsigned := f.push(t, writeDir(t, map[string]string{"s.yaml": changed}), "live", nil)
	if l := next(); Result(l.err) != "unverified" {
		t.Fatalf("unsigned bundle: %v", l.err)
	}
	if st := status(func(s string) bool { return strings.Contains(s, unsigned) }); !strings.Contains(st, unsigned) || !strings.Contains(st, "serving") || !strings.Contains(st, first) {
		t.Fatalf("status %q does not name the refused %s and the served %s", st, unsigned, first)
	}
	select {
	case l := <-loads:
		t.Fatalf("the same refusal was reported again: %v", l.err)
	case <-time.After(100 * time.Millisecond):
	}

	// Signed after the push: the same digest is taken up.
	d, _ := ParseRef(f.reg.Host + "/policies@" + unsigned)
	if err := Sign(context.Background(), d.Context().Digest(unsigned), f.signer); err != nil {
		t.Fatal(err)
	}
	if l := next(); l.err != nil || l.snap.Strategies()[0].Spec.StrategyID != 9 {
		t.Fatalf("signed later: %v", l.err)
	}
	if st := status(clear); st != "" {
		t.Fatalf("status %q with the current bundle in force", st)
	}
}
