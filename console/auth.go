package console

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/api"
	"github.com/imagegate/imagegate/iam"
)

// CookieName is the login cookie: __Host- makes the browser refuse it
// unless it is Secure, for the whole origin, and set without a Domain.
const CookieName = "__Host-imagegate-console"

// CSRFHeader carries the login's CSRF token on every state-changing request.
const CSRFHeader = "X-Imagegate-Csrf"

// reads are the console's views and the operation (and resource) that
// allows each, for the page to show what the user may open; every read is
// authorized again when made.
var reads = []struct{ view, op, resource string }{
	{"events", api.ActionListEvents, api.EventResource},
	{"attestors", "DescribeAttestors", "imagegate:attestor/*"},
	{"policies", "DescribeBinarySecurityPolicies", "imagegate:binarysecuritypolicy/*"},
	{"strategies", "ListOpaClusterStrategyNew", "imagegate:opastrategy/*"},
	{"check", api.ActionCheckWorkload, api.WorkloadResource},
}

// sameOrigin refuses a state-changing request that a browser sent from
// another origin: Origin must be this console's (or, where a browser sends
// none, Sec-Fetch-Site must say same-origin).
func sameOrigin(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, r.Host) {
			return errors.New("request from another origin (" + o + ")")
		}
		return nil
	}
	if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return nil
	}
	return errors.New("request without an Origin header")
}

func jsonBody(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return errors.New("expected Content-Type: application/json")
	}
	return nil
}

// signIn checks an API token as the management API would and opens a
// login.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	if err := jsonBody(r); err != nil {
		writeError(w, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	src := source(r)
	if retry, blocked := s.failures.blocked(src, s.opts.now()); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		writeError(w, http.StatusTooManyRequests, "too many failed sign-ins from "+src+"; try again later")
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || strings.TrimSpace(req.Token) == "" {
		writeError(w, http.StatusBadRequest, "expected {\"token\": \"API token\"}")
		return
	}
	p, err := s.auth.Authenticate(r, req.Token)
	switch {
	case errors.Is(err, api.ErrAuthUnavailable):
		s.opts.logger.Error("console sign-in: the token could not be checked", "error", err.Error())
		writeError(w, http.StatusServiceUnavailable, "the token could not be checked now; try again")
		return
	case err != nil:
		s.failures.fail(src, s.opts.now())
		s.opts.logger.Info("console sign-in refused", "reason", "unknown token", "source", src)
		writeError(w, http.StatusUnauthorized, "unknown or expired token")
		return
	}
	// Anyone the API authenticates may sign in: what they may read is
	// decided per request, since a policy may allow events of some
	// namespaces only, which no decision here could tell.
	views := s.views(r, p)
	cookie, ss, err := s.logins.open(p, req.Token, s.opts.now())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: cookie, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
		MaxAge: int(s.opts.life.Seconds())})
	s.opts.logger.Info("console sign-in", "principal", p.ID, "agency", p.Agency)
	writeJSON(w, s.loginInfo(ss, views))
}

// views are the views p may read.
func (s *Server) views(r *http.Request, p iam.Principal) []string {
	out := []string{}
	for _, v := range reads {
		if s.auth.Decide(r, p, v.op, v.resource, nil) {
			out = append(out, v.view)
		}
	}
	return out
}

func (s *Server) loginInfo(ss *login, views []string) map[string]any {
	return map[string]any{"principal": ss.principal.ID, "groups": ss.principal.Groups, "agency": ss.principal.Agency,
		"csrf": ss.csrf, "views": views, "expires": ss.created.Add(s.opts.life),
		"features": map[string]bool{"events": s.opts.events != nil, "check": s.opts.checker != nil}}
}

// call is one request of a signed-in login.
type call struct {
	s  *Server
	r  *http.Request
	ss *login
	p  iam.Principal
}

// withLogin finds the login, re-authenticates its token (a revoked one
// ends it), and for a state-changing request checks origin and CSRF token.
func (s *Server) withLogin(fn func(w http.ResponseWriter, c *call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(CookieName)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "not signed in")
			return
		}
		ss, ok := s.logins.get(ck.Value, s.opts.now())
		if !ok {
			writeError(w, http.StatusUnauthorized, "the login has ended; sign in again")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := sameOrigin(r); err != nil {
				writeError(w, http.StatusForbidden, err.Error())
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(ss.csrf)) != 1 {
				writeError(w, http.StatusForbidden, "missing or wrong "+CSRFHeader+" header")
				return
			}
		}
		p, err := s.auth.Authenticate(r, ss.token)
		switch {
		case errors.Is(err, api.ErrAuthUnavailable):
			writeError(w, http.StatusServiceUnavailable, "the login's token could not be checked now; try again")
			return
		case err != nil:
			s.logins.close(ss)
			writeError(w, http.StatusUnauthorized, "the login's token is no longer valid; sign in again")
			return
		}
		fn(w, &call{s: s, r: r, ss: ss, p: p})
	}
}

func (s *Server) whoami(w http.ResponseWriter, c *call) {
	writeJSON(w, s.loginInfo(c.ss, s.views(c.r, c.p)))
}

func (s *Server) signOut(w http.ResponseWriter, c *call) {
	s.logins.close(c.ss)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	s.opts.logger.Info("console sign-out", "principal", c.p.ID)
	w.WriteHeader(http.StatusNoContent)
}

// authorize decides op for the call's principal, recorded as an API call;
// a refusal is answered.
func (c *call) authorize(w http.ResponseWriter, op, resource string, extra map[string][]string) bool {
	if err := c.s.auth.Authorize(c.r, c.p, op, resource, extra); err != nil {
		writeError(w, http.StatusForbidden, err.Error())
		return false
	}
	return true
}

// authorizeRead is authorize for event reads, except that an allowed read
// the login had recorded within recordEvery is not recorded again: the
// live tail polls every few seconds, and a record of each poll would bury
// the audit log. Refusals are always recorded.
func (c *call) authorizeRead(w http.ResponseWriter, op, resource string, extra map[string][]string) bool {
	key := op + "\x00" + strings.Join(extra[iam.KeyNamespace], ",")
	now := c.s.opts.now()
	if c.ss.recorded(key, now) && c.s.auth.Decide(c.r, c.p, op, resource, extra) {
		return true
	}
	if err := c.s.auth.Authorize(c.r, c.p, op, resource, extra); err != nil {
		writeError(w, http.StatusForbidden, err.Error())
		return false
	}
	c.ss.record(key, now)
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
