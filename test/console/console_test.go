package console

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsole signs in and walks every view over a store of known events:
// 600 events one a minute (120 of each action), one to drill into
// (unsigned and alert) and one full of markup (block).
func TestConsole(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "audit.db")
	now := time.Now()
	drill := fill(t, store, 600, now, time.Minute)
	s := startServe(t, dir, store)
	shots := artefacts(t)
	b := newBrowser(t, s.base, shots)

	t.Run("sign-in refuses a wrong token", func(t *testing.T) {
		b.t = t
		b.signIn("not-a-token")
		b.waitText("#signin .error", "unknown or expired token")
		b.shot("01-signin-refused")
	})
	t.Run("a user without permissions sees nothing", func(t *testing.T) {
		b.t = t
		b.signIn("nobody-secret")
		b.waitText("#view .error", "no permission for imagegate:ListEvents")
		b.shot("02-unauthorised-overview")
		b.open("#/policies")
		b.waitText("#attestors .error", "NoPermission")
		if txt := b.text("#view"); strings.Contains(txt, "ci-signer") {
			t.Fatalf("unauthorised user sees an attestor: %s", txt)
		}
		b.open("#/events")
		b.waitText("#list .error", "no permission")
		b.signOut()
	})
	t.Run("overview", func(t *testing.T) {
		b.t = t
		b.signIn("admin-secret")
		b.run(chromedp.WaitVisible("#chart canvas", chromedp.ByQuery))
		totals := b.waitText(".totals", "121")
		for _, want := range []string{"121\nblock", "121\nunsigned", "121\nalert", "120\nallow", "120\nerror"} {
			if !strings.Contains(totals, want) {
				t.Fatalf("totals %q lack %q", totals, want)
			}
		}
		b.waitText("#view", "registry.example.com/team")
		b.waitText("#view", "imagegate_audit_events_dropped_total")
		b.shot("03-overview")
		b.open("#/overview?window=24h&by=namespace&action=block")
		b.run(chromedp.WaitVisible("#chart canvas", chromedp.ByQuery))
		b.waitText("#chart", "ns2")
		b.shot("04-overview-by-namespace")
	})
	t.Run("events, filters, paging", func(t *testing.T) {
		b.t = t
		b.open("#/events?namespace=ns1&action=block&limit=10")
		b.waitText("#events", "pod-")
		var rows []string
		b.run(chromedp.Evaluate(`[...document.querySelectorAll('#events tbody tr')].map(r => r.innerText)`, &rows))
		if len(rows) != 10 {
			t.Fatalf("%d rows, want 10", len(rows))
		}
		for _, r := range rows {
			if !strings.Contains(r, "ns1/") || !strings.Contains(r, "block") || strings.Contains(r, "alert") {
				t.Fatalf("row outside the filter: %q", r)
			}
		}
		var ns string
		b.run(chromedp.Value("#f-namespace", &ns, chromedp.ByQuery))
		if ns != "ns1" {
			t.Fatalf("the namespace filter shows %q after opening the link", ns)
		}
		b.shot("05-events-filtered")
		first := rows[0]
		b.run(chromedp.Click("#next", chromedp.ByQuery))
		b.waitText("#first", "Newest")
		var loc string
		b.run(chromedp.Location(&loc))
		if !strings.Contains(loc, "pageToken=") || !strings.Contains(loc, "namespace=ns1") {
			t.Fatalf("page 2's URL %s does not carry its state", loc)
		}
		b.run(chromedp.Evaluate(`[...document.querySelectorAll('#events tbody tr')].map(r => r.innerText)`, &rows))
		if len(rows) != 10 || rows[0] == first {
			t.Fatalf("page 2: %d rows, first %q", len(rows), rows[0])
		}
		b.open("#/events?cluster=c2&namespace=ns1&action=block&limit=5")
		b.waitText("#events", "ns1/")
		b.run(chromedp.Evaluate(`[...document.querySelectorAll('#events tbody tr')].map(r => r.cells[1].innerText)`, &rows))
		if len(rows) != 5 || strings.Join(rows, ",") != "c2,c2,c2,c2,c2" {
			t.Fatalf("cluster filter: %v", rows)
		}
		// The filter form: another namespace and action through the inputs.
		b.run(chromedp.SetValue("#f-namespace", "ns2", chromedp.ByQuery), chromedp.Click("#a-block", chromedp.ByQuery),
			chromedp.Click("#a-unsigned", chromedp.ByQuery), chromedp.Click("#apply", chromedp.ByQuery))
		b.waitText("#events", "unsigned")
		b.run(chromedp.Evaluate(`[...document.querySelectorAll('#events tbody tr')].map(r => r.innerText)`, &rows))
		for _, r := range rows {
			if !strings.Contains(r, "ns2/") || !strings.Contains(r, "unsigned") {
				t.Fatalf("row outside the form's filter: %q", r)
			}
		}
	})
	t.Run("drill-down", func(t *testing.T) {
		b.t = t
		b.open("#/event/" + drill.ID)
		txt := b.waitText("#view", "payments")
		for _, want := range []string{"Deployment secure/payments", "mallory", "devs", "sha256:" + strings.Repeat("ab", 32),
			"ci-signer", "no matching signatures: key mismatch", "alert high vulns", "CVE-2026-0001", "not signed by ci-signer"} {
			if !strings.Contains(txt, want) {
				t.Fatalf("drill-down lacks %q:\n%s", want, txt)
			}
		}
		b.shot("06-event-detail")
	})
	t.Run("markup in events stays text", func(t *testing.T) {
		b.t = t
		b.open("#/events?namespace=hostile")
		list := b.waitText("#events", "evil.example/")
		b.open("#/event/" + hostile(now.Add(-time.Minute/4)).ID)
		detail := b.waitText("#view", "evil.example/")
		var pwned bool
		var imgs int
		b.run(chromedp.Evaluate(`window.__pwned === 1`, &pwned), chromedp.Evaluate(`document.querySelectorAll('#view img').length`, &imgs))
		if pwned || imgs != 0 || !strings.Contains(list, xss) || !strings.Contains(detail, xss) {
			t.Fatalf("markup interpreted: pwned %v, %d img elements; list %q", pwned, imgs, list)
		}
		b.shot("07-hostile-event")
	})
	t.Run("live tail shows a new event", func(t *testing.T) {
		b.t = t
		b.open("#/events?namespace=ns0&tail=1")
		b.waitText("#events", "ns0/")
		fresh := known(0, time.Now().Add(time.Minute), time.Second)
		fresh.Namespace, fresh.Name = "ns0", "tailed-pod"
		appendEvent(t, store, fresh)
		b.waitText("#events", "tailed-pod")
	})
	t.Run("policies", func(t *testing.T) {
		b.t = t
		b.open("#/policies")
		txt := b.waitText("#view", "block bad images")
		for _, want := range []string{"ci-signer", "the CI pipeline's key", "signed-in-secure", "c1: secure", "bad-*"} {
			if !strings.Contains(txt, want) {
				t.Fatalf("policies lack %q:\n%s", want, txt)
			}
		}
		b.shot("08-policies")
	})
	t.Run("what would happen", func(t *testing.T) {
		b.t = t
		b.open("#/check")
		manifest := "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: default}\nspec: {containers: [{name: c, image: bad-image:1}]}\n"
		b.run(chromedp.WaitVisible("#manifest", chromedp.ByQuery), chromedp.SetValue("#manifest", manifest, chromedp.ByQuery), chromedp.Click("#decide", chromedp.ByQuery))
		txt := b.waitText("#results", "Denied")
		if !strings.Contains(txt, "bad-image:1") || !strings.Contains(txt, "block") {
			t.Fatalf("check result: %s", txt)
		}
		b.shot("09-check")
		b.signOut()
	})
	t.Run("a team reads its namespace only", func(t *testing.T) {
		b.t = t
		b.signIn("team-secret")
		b.waitText("#view .error", "no permission")
		b.open("#/events?namespace=ns1")
		b.waitText("#events", "ns1/")
		b.open("#/events?namespace=ns2")
		b.waitText("#list .error", "no permission")
		b.shot("10-team-refused-ns2")
		b.signOut()
	})
	if off := b.offOrigin(); len(off) > 0 || b.requestCount() == 0 {
		t.Fatalf("requests outside the console's origin (%d in all): %v", b.requestCount(), off)
	}
	t.Logf("%d requests, all to %s", b.requestCount(), s.base)
}
