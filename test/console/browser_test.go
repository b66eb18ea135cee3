package console

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browser is one headless Chromium on the console, recording every
// request the page makes.
type browser struct {
	t        testing.TB
	ctx      context.Context
	base     string
	shots    string
	mu       sync.Mutex
	requests []string
}

func newBrowser(t testing.TB, base, shots string) *browser {
	t.Helper()
	exe := os.Getenv("CHROMIUM")
	if exe == "" {
		t.Fatal("CHROMIUM is not set: run scripts/console-tools.sh and source its console-env.sh (make console-test does)")
	}
	// Not t.TempDir: Chromium's child processes may still write to its
	// profile for a moment after the browser is gone, and TempDir's
	// cleanup fails the test when the directory is not empty.
	profile, err := os.MkdirTemp("", "imagegate-console-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("ignore-certificate-errors", true), chromedp.WindowSize(1280, 900), chromedp.Flag("disable-gpu", true),
		chromedp.UserDataDir(profile))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	b := &browser{t: t, ctx: ctx, base: base, shots: shots}
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc()
		for i := 0; i < 20; i++ {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.requests = append(b.requests, e.Request.URL)
			b.mu.Unlock()
		}
	})
	if err := chromedp.Run(ctx, network.Enable()); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *browser) run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

func (b *browser) shot(name string) {
	b.t.Helper()
	var png []byte
	b.run(chromedp.FullScreenshot(&png, 100))
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run(chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// waitText waits until the element's text contains want.
func (b *browser) waitText(sel, want string) string {
	b.t.Helper()
	var s string
	deadline := time.Now().Add(15 * time.Second)
	for {
		_ = chromedp.Run(b.ctx, chromedp.Evaluate(fmt.Sprintf(`(document.querySelector(%q)||{}).innerText||""`, sel), &s))
		if strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: %q does not contain %q", sel, s, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *browser) eval(js string, out any) {
	b.t.Helper()
	b.run(chromedp.Evaluate(js, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
}

// signIn signs in through the form.
func (b *browser) signIn(token string) {
	b.t.Helper()
	b.run(chromedp.Navigate(b.base+"/"), chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.SendKeys("#token", token, chromedp.ByQuery), chromedp.Click(`#signin button[type=submit]`, chromedp.ByQuery))
}

func (b *browser) signOut() {
	b.t.Helper()
	b.run(chromedp.Click("#signout", chromedp.ByQuery), chromedp.WaitVisible("#token", chromedp.ByQuery))
}

// go opens a view by URL, as a shared link would.
func (b *browser) open(hash string) {
	b.t.Helper()
	b.run(chromedp.Navigate(b.base + "/" + hash))
}

// offOrigin lists the requests that went anywhere but the console.
func (b *browser) offOrigin() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	base, _ := url.Parse(b.base)
	var out []string
	for _, r := range b.requests {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "data" && (u.Scheme != "https" || u.Host != base.Host)) {
			out = append(out, r)
		}
	}
	return out
}

func (b *browser) requestCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.requests)
}

// waitRendered resolves with the milliseconds from now until sel exists:
// how long a view takes to show once asked for.
const waitRendered = `new Promise((resolve, reject) => {
  const t0 = performance.now();
  const sel = %q;
  %s
  const check = () => {
    if (document.querySelector(sel)) { resolve(performance.now() - t0); return true; }
    return false;
  };
  if (check()) return;
  const obs = new MutationObserver(() => { if (check()) obs.disconnect(); });
  obs.observe(document.body, {childList: true, subtree: true});
  setTimeout(() => { obs.disconnect(); reject(new Error('timed out waiting for ' + sel)); }, 30000);
})`
