package webhook

import (
	"net"
	"net/http"
	"testing"
)

// BenchmarkConnStateTrack: what tracking costs each request (two state
// changes: active, then idle again).
func BenchmarkConnStateTrack(b *testing.B) {
	var c connStates
	conn, peer := net.Pipe()
	defer conn.Close()
	defer peer.Close()
	c.track(conn, http.StateNew)
	b.ReportAllocs()
	for b.Loop() {
		c.track(conn, http.StateActive)
		c.track(conn, http.StateIdle)
	}
}

func TestConnStatesCount(t *testing.T) {
	var c connStates
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c.track(a, http.StateNew)
	c.track(b, http.StateNew)
	c.track(a, http.StateActive)
	c.track(a, http.StateIdle)
	if n, from := c.count(); c.open() != 2 || n[http.StateIdle] != 1 || n[http.StateNew] != 1 || len(from) != 2 {
		t.Fatalf("open %d, states %v from %q; want 2 open: 1 idle, 1 new", c.open(), n, from)
	}
	if n := testing.AllocsPerRun(100, func() { c.track(a, http.StateActive); c.track(a, http.StateIdle) }); n != 0 {
		t.Errorf("tracking a request allocates %v times, want 0 (it runs on every request)", n)
	}
	c.track(a, http.StateClosed)
	c.track(a, http.StateClosed) // reported once by net/http; counted once regardless
	c.track(b, http.StateHijacked)
	if n, _ := c.count(); c.open() != 0 || len(n) != 0 {
		t.Fatalf("open %d, states %v after both closed", c.open(), n)
	}
}
