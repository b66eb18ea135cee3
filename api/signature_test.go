package api

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/iam"
)

// signedEnv is a handler with access keys on and one key for root.
func signedEnv(t testing.TB, opts ...Option) (h *Handler, ak, sk string) {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state.json")
	out, err := CreateAccessKeyInState(state, sealer, "root", []string{iam.AdminGroup}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k := out["AccessKey"].(map[string]any)
	tokens := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokens, []byte(testTokens), 0o600); err != nil {
		t.Fatal(err)
	}
	tf, err := LoadTokens(tokens)
	if err != nil {
		t.Fatal(err)
	}
	h, err = NewHandler(&DirStore{Dir: t.TempDir()}, tf, state, append([]Option{WithAccessKeys(sealer)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return h, k["AccessKeyId"].(string), k["AccessKeySecret"].(string)
}

// signACS3 signs r as darabonba-openapi does (its GetAuthorization), for
// tests that need a signed request without the SDK.
func signACS3(r *http.Request, body, ak, sk, nonce string, at time.Time) {
	r.Header.Set("x-acs-action", "ListOpaClusterStrategyNew")
	r.Header.Set("x-acs-version", "2018-12-03")
	r.Header.Set("x-acs-date", at.UTC().Format("2006-01-02T15:04:05Z"))
	r.Header.Set("x-acs-signature-nonce", nonce)
	r.Header.Set("x-acs-content-sha256", sha256Hex([]byte(body)))
	signed := []string{"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"}
	var cr strings.Builder
	cr.WriteString(r.Method + "\n/\n\n")
	for _, h := range signed {
		cr.WriteString(h + ":" + strings.Join(headerValues(r, h), ",") + "\n")
	}
	cr.WriteString("\n" + strings.Join(signed, ";") + "\n" + sha256Hex([]byte(body)))
	sig := hmacSHA256Hex([]byte(sk), schemeACS3+"\n"+sha256Hex([]byte(cr.String())))
	r.Header.Set("Authorization", schemeACS3+" Credential="+ak+",SignedHeaders="+strings.Join(signed, ";")+",Signature="+sig)
}

// TestSignedRequests: the refusals of signed requests, each in the
// endpoint's cloud's shape, and audited.
func TestSignedRequests(t *testing.T) {
	var events []Event
	h, ak, sk := signedEnv(t, WithMaxBodyBytes(1024), WithAuditor(func(ev Event) { events = append(events, ev) }))
	now := time.Now()
	cases := []struct {
		name   string
		path   string
		body   string
		sign   func(r *http.Request)
		status int
		code   string
	}{
		{"signed", "/", "", func(r *http.Request) { signACS3(r, "", ak, sk, "n1", now) }, 200, ""},
		{"the same nonce again", "/", "", func(r *http.Request) { signACS3(r, "", ak, sk, "n1", now) }, 400, "SignatureNonceUsed"},
		{"a wrong secret", "/", "", func(r *http.Request) { signACS3(r, "", ak, sk+"x", "n2", now) }, 400, "SignatureDoesNotMatch"},
		{"an unknown key", "/", "", func(r *http.Request) { signACS3(r, "", "IGNOSUCHKEY", sk, "n3", now) }, 404, "InvalidAccessKeyId.NotFound"},
		{"16 minutes late", "/", "", func(r *http.Request) { signACS3(r, "", ak, sk, "n4", now.Add(-16*time.Minute)) }, 400, "InvalidTimeStamp.Expired"},
		{"16 minutes early", "/", "", func(r *http.Request) { signACS3(r, "", ak, sk, "n5", now.Add(16*time.Minute)) }, 400, "InvalidTimeStamp.Expired"},
		{"a body other than signed", "/", "Action=DeleteAttestor", func(r *http.Request) { signACS3(r, "", ak, sk, "n6", now) }, 400, "SignatureDoesNotMatch"},
		{"an unsigned x-acs header", "/", "", func(r *http.Request) { signACS3(r, "", ak, sk, "n7", now); r.Header.Set("x-acs-extra", "1") }, 400, "IncompleteSignature"},
		{"no date", "/", "", func(r *http.Request) {
			signACS3(r, "", ak, sk, "n8", now)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "x-acs-date;", "", 1))
		}, 400, "IncompleteSignature"},
		{"a malformed Authorization", "/", "", func(r *http.Request) { r.Header.Set("Authorization", "ACS3-HMAC-SHA256 nonsense") }, 400, "IncompleteSignature"},
		{"Huawei without X-Sdk-Date", "/v3.0/OS-ROLE/roles", "", func(r *http.Request) {
			r.Header.Set("Authorization", "SDK-HMAC-SHA256 Access="+ak+", SignedHeaders=x-sdk-date, Signature=00")
		}, 401, "APIGW.0301"},
		{"a body over the limit", "/", strings.Repeat("a", 1025), func(r *http.Request) { signACS3(r, strings.Repeat("a", 1025), ak, sk, "n9", now) }, 413, "RequestEntityTooLarge"},
		{"a REST body over the limit", "/v5/agencies", strings.Repeat("a", 1025), func(r *http.Request) {}, 413, "APIGW.0201"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := http.MethodPost
			if strings.HasPrefix(c.path, "/v3.0") {
				method = http.MethodGet
			}
			r := httptest.NewRequest(method, c.path, strings.NewReader(c.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			c.sign(r)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status || (c.code != "" && !strings.Contains(w.Body.String(), `"`+c.code+`"`)) {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Body.String(), c.status, c.code)
			}
			ev := events[len(events)-1]
			if ev.Status != c.status || ev.Code != c.code || (c.code != "" && ev.Allowed) {
				t.Errorf("audited as %+v", ev)
			}
		})
	}
}

// TestReplayMemoryBounded: past its bounds the memory forgets the oldest
// nonces and refuses every request not newer than them, so no forgotten
// nonce can be replayed.
func TestReplayMemoryBounded(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name              string
		entries, bytes    int
		wantMaxEntries    int
		wantOldestRefused bool
	}{
		{"by entries", 100, 1 << 20, 100, true},
		{"by bytes", 1 << 20, 100 * (replayEntryOverhead + 8), 100, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newReplays(c.entries, c.bytes)
			for i := 0; i < 1000; i++ {
				if got := r.check(fmt.Sprintf("n%07d", i), now.Add(time.Duration(i)*time.Millisecond), now); got != replayFresh {
					t.Fatalf("nonce %d: %v", i, got)
				}
			}
			n, b := r.size()
			if n > c.wantMaxEntries || b > c.bytes {
				t.Errorf("%d entries, %d bytes: over the bounds", n, b)
			}
			if got := r.check("n0000000", now, now); got != replayBelowFloor {
				t.Errorf("a forgotten nonce replayed: %v", got)
			}
			if got := r.check("n0000999", now.Add(999*time.Millisecond), now); got != replayUsed {
				t.Errorf("a remembered nonce: %v", got)
			}
			if got := r.check("fresh", now.Add(2*time.Second), now); got != replayFresh {
				t.Errorf("a newer request: %v", got)
			}
		})
	}
	t.Run("expired entries go", func(t *testing.T) {
		r := newReplays(1000, 1<<20)
		r.check("a", now, now)
		r.check("b", now.Add(SignatureWindow+time.Second), now.Add(SignatureWindow+2*time.Second))
		if n, _ := r.size(); n != 1 {
			t.Errorf("%d entries after the first left the window", n)
		}
	})
}

// BenchmarkSignedCall is signature verification (ACS3-HMAC-SHA256, replay
// memory included) and authorization of one call, as the handler runs
// them; the requests are signed, each with its own nonce, before the
// timer starts.
func BenchmarkSignedCall(b *testing.B) {
	h, ak, sk := signedEnv(b)
	now := time.Now()
	ctx := map[string][]string{iam.KeyRuleAction: {"2"}, iam.KeyClusterID: {"prod-1"}}
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodPost, "/", nil)
		signACS3(reqs[i], "", ak, sk, fmt.Sprint("nonce-", i), now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := h.authenticate(reqs[i], nil, now)
		if err != nil {
			b.Fatal(err)
		}
		c := &call{h: h, r: reqs[i], now: now, principal: p}
		if err := c.authorize("UpdateOpaStrategyNew", "imagegate:opastrategy/7", ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n, bytes := h.replays.size()
	b.ReportMetric(float64(bytes)/float64(max(n, 1)), "replay-B/nonce")
}
