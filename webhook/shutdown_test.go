package webhook_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/webhook"
)

// TestServerShutdownClosesKeptAliveConnections: after SIGTERM, a request on
// a kept-alive connection is still answered on that connection, the answer
// closes it, and the shutdown goes on as soon as no connection is left
// (long before ShutdownDelay). Without the delay the server closes the idle
// connections at once and these requests fail, as the API server's would.
func TestServerShutdownClosesKeptAliveConnections(t *testing.T) {
	const conns = 4
	for _, http1 := range []bool{true, false} {
		name := map[bool]string{true: "HTTP/1.1", false: "HTTP/2"}[http1]
		t.Run(name, func(t *testing.T) {
			certFile, keyFile := writeCert(t, t.TempDir(), "x")
			h, _ := webhook.NewHandler(realDecider(t))
			ts := startServer(t, h, func() bool { return true }, certFile, keyFile, func(s *webhook.Server) {
				s.HTTP1Only, s.ShutdownDelay = http1, time.Minute
			})
			// One client per connection, each left idle after a first answer.
			clients := make([]*http.Client, conns)
			for i := range clients {
				clients[i] = &http.Client{Transport: &http.Transport{
					TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
				t.Cleanup(clients[i].CloseIdleConnections) // before the server's: no minute-long drain on failure
				if _, _, err := validate(clients[i], ts.url); err != nil {
					t.Fatal(err)
				}
			}
			ts.cancel() // SIGTERM
			waitNotReady(t, ts.url)
			for i, c := range clients {
				reused, resp, err := validate(c, ts.url)
				if err != nil {
					t.Fatalf("client %d after SIGTERM: %v (its kept-alive connection was closed under it)", i, err)
				}
				if !reused {
					t.Errorf("client %d: answered on a new connection, want its kept-alive one", i)
				}
				if http1 && !resp.Close {
					t.Errorf("client %d: the answer did not say Connection: close", i)
				}
			}
			select {
			case err := <-ts.done:
				if err != nil {
					t.Errorf("shutdown: %v", err)
				}
				ts.done <- nil // for the cleanup
			case <-time.After(20 * time.Second):
				t.Fatal("shutdown still waiting 20 s after every connection was closed (delay 1 min)")
			}
		})
	}
}

// validate posts a review and reports whether it went on a reused connection.
func validate(c *http.Client, url string) (bool, *http.Response, error) {
	req, _ := http.NewRequest("POST", url+"/validate", strings.NewReader(reviewJSON("CREATE", "Pod", "default", pod("default", "x"), "")))
	req.Header.Set("Content-Type", "application/json")
	reused, resp, err := doTraced(c, req)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return reused, resp, err
}

// waitNotReady polls /readyz on connections of its own until it answers 503.
func waitNotReady(t *testing.T, url string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		resp, err := c.Get(url + "/readyz")
		if err != nil {
			t.Fatalf("readyz during shutdown: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			return
		}
	}
	t.Fatal("still ready 10 s after SIGTERM")
}
