package console_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit/storetest"
	"github.com/imagegate/imagegate/console"
)

func TestSignIn(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, token, origin, ctype string
		status                     int
		errPart                    string
	}{
		{"unknown token", "guess", "", "application/json", 401, "unknown or expired"},
		{"another origin (login CSRF)", "admin-token", "https://evil.example", "application/json", 403, "another origin"},
		{"a form post (no preflight)", "admin-token", "", "application/x-www-form-urlencoded", 415, "application/json"},
		{"admin", "admin-token", "", "application/json", 200, ""},
		{"events of one namespace only", "team-token", "", "application/json", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := e.browser()
			if c.origin != "" {
				b.origin = c.origin
			}
			st, out, h := b.do(http.MethodPost, "/api/login", c.ctype, `{"token":"`+c.token+`"}`)
			if st != c.status || (c.errPart != "" && !strings.Contains(out["error"].(string), c.errPart)) {
				t.Fatalf("%d %v, want %d %q", st, out, c.status, c.errPart)
			}
			if st != 200 {
				if h.Get("Set-Cookie") != "" {
					t.Fatalf("refused sign-in set a cookie: %s", h.Get("Set-Cookie"))
				}
				return
			}
			ck := h.Get("Set-Cookie")
			for _, attr := range []string{console.CookieName + "=", "HttpOnly", "Secure", "SameSite=Strict", "Path=/"} {
				if !strings.Contains(ck, attr) {
					t.Errorf("cookie %q lacks %s", ck, attr)
				}
			}
			if strings.Contains(ck, c.token) || len(out["csrf"].(string)) != 64 {
				t.Fatalf("cookie %q or csrf %v", ck, out["csrf"])
			}
			if st, who := b.get("/api/login"); st != 200 || who["csrf"] != out["csrf"] {
				t.Fatalf("login: %d %v", st, who)
			}
		})
	}
}

func TestStateChangesNeedOriginAndCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	if st, out, _ := b.signIn("admin-token"); st != 200 {
		t.Fatalf("sign-in: %d %v", st, out)
	}
	manifest := "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: secure}\nspec: {containers: [{name: c, image: registry.example.com/team/app:2}]}\n"
	csrf := b.csrf
	cases := []struct {
		name, origin, csrf string
		status             int
	}{
		{"no CSRF header", b.origin, "", 403},
		{"wrong CSRF header", b.origin, strings.Repeat("0", 64), 403},
		{"another origin", "https://evil.example", csrf, 403},
		{"plain http origin", strings.Replace(b.origin, "https", "http", 1), csrf, 403},
		{"same origin with the token", b.origin, csrf, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b.origin, b.csrf = c.origin, c.csrf
			st, out, _ := b.do(http.MethodPost, "/api/check", "application/yaml", manifest)
			if st != c.status {
				t.Fatalf("%d %v, want %d", st, out, c.status)
			}
		})
	}
	t.Run("no Origin but Sec-Fetch-Site same-origin", func(t *testing.T) {
		b.origin, b.csrf = "", csrf
		if st, out, _ := b.do(http.MethodPost, "/api/check", "application/yaml", manifest, "Sec-Fetch-Site", "same-origin"); st != 200 {
			t.Fatalf("%d %v", st, out)
		}
		if st, _, _ := b.do(http.MethodPost, "/api/check", "application/yaml", manifest, "Sec-Fetch-Site", "cross-site"); st != 403 {
			t.Fatalf("cross-site: %d", st)
		}
	})
}

func TestEventsViews(t *testing.T) {
	e := newEnv(t)
	admin, team, nobody := e.browser(), e.browser(), e.browser()
	admin.signIn("admin-token")
	team.signIn("team-token")
	nobody.signIn("nobody-token")
	blocked := storetest.Synthetic(5) // ns2, block, c2
	cases := []struct {
		name  string
		b     *browser
		path  string
		check func(t *testing.T, st int, out map[string]any)
	}{
		{"admin, every filter", admin, "/api/events?type=admission&namespace=ns2&action=block&image=registry.example.com/team1/*&limit=5", func(t *testing.T, st int, out map[string]any) {
			evs := out["events"].([]any)
			if st != 200 || len(evs) != 5 || out["nextPageToken"] == "" {
				t.Fatalf("%d %v", st, out)
			}
			for _, ev := range evs {
				m := ev.(map[string]any)
				if m["namespace"] != "ns2" || m["actions"].([]any)[0] != "block" || !strings.HasPrefix(m["images"].([]any)[0].(map[string]any)["image"].(string), "registry.example.com/team1/") {
					t.Fatalf("filter not applied: %v", m)
				}
			}
		}},
		{"admin, a bad filter names it", admin, "/api/events?action=explode", func(t *testing.T, st int, out map[string]any) {
			if st != 400 || !strings.Contains(out["error"].(string), "action") {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"admin, drill-down", admin, "/api/events/" + blocked.ID, func(t *testing.T, st int, out map[string]any) {
			if st != 200 || out["uid"] != blocked.UID || out["namespace"] != "ns2" {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"admin, no such event", admin, "/api/events/" + strings.Repeat("0", 32), func(t *testing.T, st int, out map[string]any) {
			if st != 404 {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"team, its namespace", team, "/api/events?namespace=ns1", func(t *testing.T, st int, out map[string]any) {
			if st != 200 || len(out["events"].([]any)) == 0 {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"team, all namespaces refused", team, "/api/events", func(t *testing.T, st int, out map[string]any) {
			if st != 403 || !strings.Contains(out["error"].(string), "imagegate:ListEvents") {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"team, another namespace refused", team, "/api/events?namespace=ns2", func(t *testing.T, st int, out map[string]any) {
			if st != 403 {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"team, drill-down into another namespace refused", team, "/api/events/" + blocked.ID, func(t *testing.T, st int, out map[string]any) {
			if st != 403 {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"team, overview (all namespaces) refused", team, "/api/stats", func(t *testing.T, st int, out map[string]any) {
			if st != 403 {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"admin, overview", admin, "/api/stats?since=" + storetest.T0.Format(time.RFC3339) + "&by=namespace&action=block", func(t *testing.T, st int, out map[string]any) {
			if st != 200 || len(out["series"].([]any)) != 3 || out["totals"].(map[string]any)["block"].(float64) == 0 ||
				out["counters"].(map[string]any)["imagegate_audit_events_dropped_total"].(float64) != 3 || len(out["topBlockedImages"].([]any)) == 0 {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"admin, overview with a bad dimension", admin, "/api/stats?by=user", func(t *testing.T, st int, out map[string]any) {
			if st != 400 || !strings.Contains(out["error"].(string), "by") {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"admin, policies through the API", admin, "/api/policies", func(t *testing.T, st int, out map[string]any) {
			if st != 200 || len(out["attestors"].([]any)) != 1 || len(out["policies"].([]any)) != 1 || len(out["strategies"].([]any)) != 1 ||
				len(out["denied"].(map[string]any)) != 0 {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"team, policies refused each", team, "/api/policies", func(t *testing.T, st int, out map[string]any) {
			d := out["denied"].(map[string]any)
			if st != 200 || len(d) != 3 || !strings.Contains(d["attestors"].(string), "NoPermission") || len(out["attestors"].([]any)) != 0 {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"no permission: events refused", nobody, "/api/events", func(t *testing.T, st int, out map[string]any) {
			if st != 403 {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"no permission: policies refused", nobody, "/api/policies", func(t *testing.T, st int, out map[string]any) {
			if st != 200 || len(out["denied"].(map[string]any)) != 3 || len(out["policies"].([]any)) != 0 {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"no permission: no view offered", nobody, "/api/login", func(t *testing.T, st int, out map[string]any) {
			if st != 200 || len(out["views"].([]any)) != 0 || out["principal"] != "nobody" {
				t.Fatalf("%d %v", st, out)
			}
		}},
		{"signed out: nothing", e.browser(), "/api/events", func(t *testing.T, st int, out map[string]any) {
			if st != 401 {
				t.Fatalf("%d %v", st, out)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, out := c.b.get(c.path)
			c.check(t, st, out)
		})
	}
}

func TestCheckBox(t *testing.T) {
	e := newEnv(t, console.WithMaxCheckBytes(4096))
	b := e.browser()
	b.signIn("admin-token")
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: secure}\nspec: {containers: [{name: c, image: registry.example.com/team/app:2}]}\n"
	st, out, _ := b.do(http.MethodPost, "/api/check", "application/yaml", pod)
	rs, _ := out["results"].([]any)
	if st != 200 || len(rs) != 1 || rs[0].(map[string]any)["allowed"] != false {
		t.Fatalf("unsigned image in a namespace requiring ci: %d %v", st, out)
	}
	img := rs[0].(map[string]any)["images"].([]any)[0].(map[string]any)
	if img["action"] != "unsigned" || img["missingAttestors"].([]any)[0] != "ci" {
		t.Fatalf("image verdict %v", img)
	}
	if st, out, _ = b.do(http.MethodPost, "/api/check", "application/yaml", strings.Replace(pod, "containers", "containerz", 1)); st != 400 || !strings.Contains(out["error"].(string), "containerz") {
		t.Fatalf("typo: %d %v", st, out)
	}
	if st, _, _ = b.do(http.MethodPost, "/api/check", "application/yaml", pod+strings.Repeat("# padding\n", 500)); st != 413 {
		t.Fatalf("over the size limit: %d", st)
	}
	team := e.browser()
	team.signIn("team-token")
	if st, _, _ = team.do(http.MethodPost, "/api/check", "application/yaml", pod); st != 403 {
		t.Fatalf("team without CheckWorkload: %d", st)
	}
}

func TestLoginsBounded(t *testing.T) {
	e := newEnv(t, console.WithLoginLimits(2, 1, time.Minute, time.Hour))
	a1, a2, tm, third := e.browser(), e.browser(), e.browser(), e.browser()
	a1.signIn("admin-token")
	if st, _ := a1.get("/api/login"); st != 200 {
		t.Fatal("first login")
	}
	a2.signIn("admin-token") // one per principal: a1's goes
	if st, _ := a1.get("/api/login"); st != 401 {
		t.Fatalf("the principal's older login still works: %d", st)
	}
	tm.signIn("team-token")
	if st, out, _ := third.signIn("admin-token"); st != 200 {
		t.Fatalf("same principal again replaces its own: %d %v", st, out)
	}
	if e.con.Logins() != 2 {
		t.Fatalf("%d logins, want 2", e.con.Logins())
	}
	e.advance(30 * time.Second)
	if st, _ := tm.get("/api/login"); st != 200 {
		t.Fatal("active login ended early")
	}
	e.advance(61 * time.Second) // third idle past a minute, tm seen 61s ago too
	if st, _ := third.get("/api/login"); st != 401 {
		t.Fatalf("idle login still works: %d", st)
	}
	// Full of live logins: a new principal is refused, not let in by
	// evicting someone else's.
	e2 := newEnv(t, console.WithLoginLimits(1, 1, time.Hour, time.Hour))
	x, y := e2.browser(), e2.browser()
	x.signIn("admin-token")
	if st, out, _ := y.signIn("team-token"); st != 503 {
		t.Fatalf("sign-in past the bound: %d %v", st, out)
	}
	e2.advance(2 * time.Hour) // lifetime over: the slot frees
	if st, _, _ := y.signIn("team-token"); st != 200 {
		t.Fatalf("after expiry: %d", st)
	}
}

func TestRevokedTokenEndsLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn("admin-token")
	if st, _ := b.get("/api/events"); st != 200 {
		t.Fatal("events")
	}
	must(t, os.WriteFile(e.tokens, []byte("team-token,tina,team\n"), 0o600))
	future := time.Now().Add(time.Second)
	must(t, os.Chtimes(e.tokens, future, future))
	if st, out := b.get("/api/events"); st != 401 || !strings.Contains(out["error"].(string), "no longer valid") {
		t.Fatalf("revoked token: %d %v", st, out)
	}
}

func TestSignOut(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn("admin-token")
	if st, _, _ := b.do(http.MethodDelete, "/api/login", "", ""); st != 204 {
		t.Fatalf("sign-out: %d", st)
	}
	if st, _ := b.get("/api/events"); st != 401 || e.con.Logins() != 0 {
		t.Fatalf("after sign-out: %d, %d logins", st, e.con.Logins())
	}
}

func TestAssets(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	st, _, h := b.do(http.MethodGet, "/", "", "", "Accept-Encoding", "identity")
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") ||
		!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("index: %d %v", st, h)
	}
	if st, _, _ := b.do(http.MethodGet, "/assets/nothing.js", "", ""); st != 404 {
		t.Fatalf("missing asset: %d", st)
	}
	// The budget: everything the browser loads, gzipped as served.
	n, err := console.GzipSize()
	if err != nil || n > 300<<10 {
		t.Fatalf("assets %d bytes gzipped, budget %d (%v)", n, 300<<10, err)
	}
}

// Console reads are API calls in the audit: the first of each kind per
// login, again after recordEvery, and every refusal; the live tail's
// polls do not bury the log.
func TestReadsAreAudited(t *testing.T) {
	e := newEnv(t)
	admin, team := e.browser(), e.browser()
	admin.signIn("admin-token")
	team.signIn("team-token")
	for range 5 {
		admin.get("/api/events")
		admin.get("/api/events?namespace=ns1")
		team.get("/api/events?namespace=ns2")
	}
	if n := e.records("root", "imagegate:ListEvents", true); n != 2 {
		t.Fatalf("%d records of root's reads, want 2 (all namespaces, ns1)", n)
	}
	if n := e.records("tina", "imagegate:ListEvents", false); n != 5 {
		t.Fatalf("%d records of tina's refusals, want 5", n)
	}
	e.advance(11 * time.Minute)
	admin.get("/api/events")
	if n := e.records("root", "imagegate:ListEvents", true); n != 3 {
		t.Fatalf("%d records after 11 minutes, want 3", n)
	}
	admin.do(http.MethodPost, "/api/check", "application/yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x:1}]}\n")
	admin.do(http.MethodPost, "/api/check", "application/yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x:1}]}\n")
	if n := e.records("root", "imagegate:CheckWorkload", true); n != 2 {
		t.Fatalf("%d records of checks, want every one (2)", n)
	}
}

// Guessing tokens through the sign-in form: ten wrong ones a minute per
// source address, then even the right one waits.
func TestSignInGuessingBounded(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for i := range console.DefaultSignInFailures {
		if st, _, _ := b.signIn(fmt.Sprint("guess-", i)); st != 401 {
			t.Fatalf("guess %d: %d", i, st)
		}
	}
	st, out, h := b.signIn("admin-token")
	if st != 429 || h.Get("Retry-After") == "" || !strings.Contains(out["error"].(string), "too many failed sign-ins") {
		t.Fatalf("after %d failures: %d %v %v", console.DefaultSignInFailures, st, out, h)
	}
	e.advance(time.Minute)
	if st, _, _ := b.signIn("admin-token"); st != 200 {
		t.Fatalf("a minute later: %d", st)
	}
}
