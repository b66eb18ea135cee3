package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// serveWith runs srv on loopback listeners (TLS with a fresh certificate)
// until the test ends and returns the webhook's address.
func serveWith(t *testing.T, srv *webhook.Server) string {
	addr, _ := serveWithMetrics(t, srv)
	return addr
}

// serveWithMetrics is serveWith that also returns the metrics address.
func serveWithMetrics(t *testing.T, srv *webhook.Server) (addr, metricsAddr string) {
	t.Helper()
	if srv.Certs == nil {
		certFile, keyFile := writeCert(t, t.TempDir(), "x")
		certs, err := webhook.NewCertReloader(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		srv.Certs = certs
	}
	if srv.Gatherer == nil {
		srv.Gatherer = prometheus.NewRegistry()
	}
	srv.Logger = slog.New(slog.DiscardHandler)
	srv.ShutdownTimeout = time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, mln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), mln.Addr().String()
}

// serverConns counts the goroutines serving a connection (HTTP/1 or
// HTTP/2): what a slow client holds on the server. Counting these rather
// than all goroutines keeps other tests' leftovers out.
func serverConns() int { return goroutinesIn("net/http.(*conn).serve(") }

// http2Handlers counts the goroutines running HTTP/2 handlers.
func http2Handlers() int { return goroutinesIn("net/http.(*http2serverConn).runHandler(") }

func goroutinesIn(fn string) int {
	buf := make([]byte, 8<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), fn)
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServerCutsOffSlowClients: clients that trickle their handshake,
// headers or body, or sit idle, are disconnected once the read limits pass,
// and the goroutines they held are gone.
func TestServerCutsOffSlowClients(t *testing.T) {
	const clients = 40
	h, _ := webhook.NewHandler(realDecider(t))
	addr := serveWith(t, &webhook.Server{Handler: h, Limits: webhook.Limits{
		ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second,
	}})
	tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
	body := reviewJSON("CREATE", "Pod", "default", pod("default", "x"), "")
	cases := []struct {
		name string
		// start opens one connection and begins trickling; it returns what
		// is left to send one byte at a time.
		start func(t *testing.T) (net.Conn, string)
	}{
		{"stalled handshake", func(t *testing.T) (net.Conn, string) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			return c, "" // never says ClientHello
		}},
		{"slow headers", func(t *testing.T) (net.Conn, string) {
			c := dialTLS(t, addr, tlsConf)
			return c, "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: " + strings.Repeat("a", 1000)
		}},
		{"slow body", func(t *testing.T) (net.Conn, string) {
			c := dialTLS(t, addr, tlsConf)
			io.WriteString(c, "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
			return c, strings.Repeat(" ", 1000)
		}},
		{"idle after an answer", func(t *testing.T) (net.Conn, string) {
			c := dialTLS(t, addr, tlsConf)
			io.WriteString(c, "POST /validate?timeout=5s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
			return c, ""
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var closed atomic.Int32
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range clients {
				conn, rest := c.start(t)
				wg.Add(2)
				go func() { // trickles one byte every 20ms
					defer wg.Done()
					for i := 0; i < len(rest); i++ {
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Millisecond):
						}
						if _, err := io.WriteString(conn, rest[i:i+1]); err != nil {
							return
						}
					}
				}()
				go func() { // sees the server hang up
					defer wg.Done()
					io.Copy(io.Discard, conn)
					closed.Add(1)
					conn.Close()
				}()
			}
			// The attack holds a goroutine per connection (most of them at
			// least: on a loaded machine the first may be cut off before the
			// last is dialled) ...
			waitUntil(t, "the connections to be served", 5*time.Second, func() bool { return serverConns() >= clients/2 })
			// ... until the limits pass.
			waitUntil(t, "the server to hang up on every slow client", 10*time.Second, func() bool { return closed.Load() == clients })
			close(stop)
			wg.Wait()
			waitUntil(t, "server goroutines back to the baseline", 5*time.Second, func() bool { return serverConns() == 0 })
		})
	}
}

func dialTLS(t *testing.T, addr string, conf *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// h2conn is a raw HTTP/2 client connection, for sending what a well-behaved
// client never would. A reader drains the server's frames and records
// whether the server sent GOAWAY or hung up.
type h2conn struct {
	conn   *tls.Conn
	fr     *http2.Framer
	enc    *hpack.Encoder
	hbuf   bytes.Buffer
	goaway atomic.Value // http2.ErrCode
	closed chan struct{}
}

func dialH2(t *testing.T, addr string) *h2conn {
	t.Helper()
	c := dialTLS(t, addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q", p)
	}
	h := &h2conn{conn: c, closed: make(chan struct{})}
	h.enc = hpack.NewEncoder(&h.hbuf)
	io.WriteString(c, http2.ClientPreface)
	h.fr = http2.NewFramer(c, c)
	h.fr.WriteSettings()
	go func() {
		defer close(h.closed)
		rf := http2.NewFramer(io.Discard, c)
		for {
			f, err := rf.ReadFrame()
			if err != nil {
				return
			}
			if f, ok := f.(*http2.GoAwayFrame); ok {
				h.goaway.Store(f.ErrCode)
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return h
}

func (h *h2conn) headerBlock(path string, extra ...hpack.HeaderField) []byte {
	h.hbuf.Reset()
	for _, f := range append([]hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "x"}, {Name: ":path", Value: path}, {Name: "content-type", Value: "application/json"}}, extra...) {
		h.enc.WriteField(f)
	}
	return append([]byte(nil), h.hbuf.Bytes()...)
}

func (h *h2conn) isClosed() bool {
	select {
	case <-h.closed:
		return true
	default:
		return false
	}
}

// TestServerHTTP2RapidReset: a client opening streams and resetting them at
// once (CVE-2023-44487) never has more handlers running than
// MaxConcurrentStreams, even when the handlers ignore the cancellation, and
// is disconnected; the goroutines are gone once the handlers return.
func TestServerHTTP2RapidReset(t *testing.T) {
	const streams = 10
	release := make(chan struct{})
	var running, most atomic.Int32
	stuck := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release // a handler slow to notice the reset: the worst case
	})
	addr := serveWith(t, &webhook.Server{Handler: stuck, Limits: webhook.Limits{MaxConcurrentStreams: streams}})
	h := dialH2(t, addr)
	block := h.headerBlock("/validate")
	sent := 0
	for id := uint32(1); id < 2*5000 && !h.isClosed(); id += 2 {
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
			break
		}
		if err := h.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
		sent++
	}
	waitUntil(t, "the server to drop the connection", 5*time.Second, h.isClosed)
	t.Logf("%d streams opened and reset before the hang-up (GOAWAY %v)", sent, h.goaway.Load())
	if m := most.Load(); m > streams || m == 0 {
		t.Errorf("%d handlers ran at once; want 1..%d", m, streams)
	}
	if g := http2Handlers(); g > streams {
		t.Errorf("%d handler goroutines after the attack; want at most %d", g, streams)
	}
	close(release)
	waitUntil(t, "the connection's goroutines to end", 5*time.Second, func() bool { return http2Handlers() == 0 && serverConns() == 0 })
}

// TestServerHTTP2ContinuationFlood: headers that never end (CONTINUATION
// frames without END_HEADERS, CVE-2023-45288) are not read forever: the
// server hangs up once they pass MaxHeaderBytes, and no handler runs.
func TestServerHTTP2ContinuationFlood(t *testing.T) {
	var called atomic.Bool
	addr := serveWith(t, &webhook.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Store(true) })})
	h := dialH2(t, addr)
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.headerBlock("/validate"), EndStream: true}); err != nil {
		t.Fatal(err)
	}
	pad := h.headerBlock("/validate", hpack.HeaderField{Name: "x-pad", Value: strings.Repeat("p", 8<<10)})
	total := 0
	for total < 64<<20 && !h.isClosed() {
		if err := h.fr.WriteContinuation(1, false, pad); err != nil {
			break
		}
		total += len(pad)
	}
	waitUntil(t, "the server to drop the connection", 5*time.Second, h.isClosed)
	if called.Load() {
		t.Error("a handler ran for headers that never ended")
	}
	t.Logf("sent %d KiB of CONTINUATION before the hang-up (GOAWAY %v; MaxHeaderBytes %d KiB)", total>>10, h.goaway.Load(), webhook.DefaultLimits().MaxHeaderBytes>>10)
	waitUntil(t, "the connection's goroutine to end", 5*time.Second, func() bool { return serverConns() == 0 })
}
