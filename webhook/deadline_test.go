package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
	"github.com/imagegate/imagegate/workload"
)

// TestHandlerTimeoutParameter: the API server's ?timeout= is capped at
// MaxTimeout, and one too short to decide in is answered as such, by the
// failure policy, without asking the decider.
func TestHandlerTimeoutParameter(t *testing.T) {
	cases := []struct {
		name, query string
		failOpen    bool
		// want the decider called with a deadline this far ahead (less the
		// 10 % margin), or not called and the answer naming msg.
		budget  time.Duration
		msg     string
		allowed bool
	}{
		{"api server's 10s", "?timeout=10s", false, 9 * time.Second, "", true},
		{"no parameter: the default", "", false, webhook.DefaultTimeout * 9 / 10, "", true},
		{"an hour is capped", "?timeout=1h", false, webhook.MaxTimeout * 9 / 10, "", true},
		{"31s is capped", "?timeout=31s", false, webhook.MaxTimeout * 9 / 10, "", true},
		{"1ns is too short, fail closed", "?timeout=1ns", false, 0, "deadline too short: timeout=1ns", false},
		{"1ns is too short, fail open", "?timeout=1ns", true, 0, "deadline too short: timeout=1ns", true},
		{"zero is too short", "?timeout=0s", false, 0, "deadline too short", false},
		{"negative is too short", "?timeout=-5s", false, 0, "deadline too short", false},
		{"not a duration", "?timeout=soon", false, 0, "is not a duration", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got time.Duration
			called := false
			d := deciderFunc(func(ctx context.Context, _ *workload.Object) (*rego.Decision, error) {
				called = true
				dl, ok := ctx.Deadline()
				if !ok {
					t.Error("no deadline")
				}
				got = time.Until(dl)
				return &rego.Decision{Allowed: true}, nil
			})
			h, err := webhook.NewHandler(d, webhook.WithFailOpen(c.failOpen))
			if err != nil {
				t.Fatal(err)
			}
			_, out := post(t, h, reviewJSON("CREATE", "Pod", "default", pod("default", "x"), ""), "application/json", c.query)
			if out == nil {
				t.Fatal("no review answered")
			}
			if out.Response.Allowed != c.allowed || out.Response.UID != "uid-1" {
				t.Errorf("answer %+v", out.Response)
			}
			if c.msg == "" {
				// The deadline is set before the decider runs: it can only
				// have shrunk, and by far less than a second.
				if !called || got > c.budget || got < c.budget-time.Second {
					t.Errorf("decider called %v with %v left; want just under %v", called, got, c.budget)
				}
				return
			}
			if called {
				t.Error("the decider was asked despite the deadline")
			}
			if text := fmt32(out); !strings.Contains(text, c.msg) || strings.Contains(text, "too many requests in flight") {
				t.Errorf("answer does not say %q: %s", c.msg, text)
			}
			if out.Response.AuditAnnotations["decision"] != "error" {
				t.Errorf("audit annotation %v", out.Response.AuditAnnotations)
			}
		})
	}
}

// Requests that need no decision are answered whatever their deadline.
func TestHandlerTooShortDeadlineSkipsNothingToDecide(t *testing.T) {
	h, _ := webhook.NewHandler(realDecider(t))
	_, out := post(t, h, reviewJSON("DELETE", "Pod", "default", "", pod("default", "bad-app:1")), "application/json", "?timeout=1ns")
	if out == nil || !out.Response.Allowed {
		t.Errorf("DELETE with a tiny deadline: %+v", out)
	}
}

func TestDefaultTimeoutBounds(t *testing.T) {
	for _, d := range []time.Duration{0, time.Nanosecond, time.Minute} {
		if _, err := webhook.NewHandler(realDecider(t), webhook.WithDefaultTimeout(d)); err == nil {
			t.Errorf("default timeout %v accepted", d)
		}
	}
}
