package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/iam"
)

// Tokens are the bearer tokens of the tokens file. The file is looked at
// again (at most every ReloadEvery) and re-read when it changed, so tokens
// can be added and revoked without a restart; a file that no longer parses
// keeps the tokens in force and is reported to OnReloadError; a deleted
// file revokes every token of it (reported to OnRevoked) until it is back.
type Tokens struct {
	path          string
	ReloadEvery   time.Duration
	OnReloadError func(error)
	OnRevoked     func(error)

	mu      sync.Mutex
	byToken map[string]iam.Principal
	watch   fileWatch
}

// DefaultTokensReload is how often the tokens file is checked for changes.
const DefaultTokensReload = 2 * time.Second

// LoadTokens reads a CSV tokens file: token,principal[,group1|group2]. The
// kube-apiserver's token file (token,user,uid,"group1,group2") loads too.
// Blank lines and lines starting with # are skipped.
func LoadTokens(path string) (*Tokens, error) {
	m, stamp, err := readTokens(path)
	if err != nil {
		return nil, err
	}
	return &Tokens{path: path, ReloadEvery: DefaultTokensReload, byToken: m, watch: fileWatch{path: path, stamp: stamp, checked: time.Now()}}, nil
}

func readTokens(path string) (map[string]iam.Principal, string, error) {
	stamp, err := fileStamp(path)
	if err != nil {
		return nil, "", fmt.Errorf("--api-tokens: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("--api-tokens: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.Comment = '#'
	r.TrimLeadingSpace = true
	m := map[string]iam.Principal{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", fmt.Errorf("--api-tokens %s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) < 2 || rec[0] == "" || rec[1] == "" {
			return nil, "", fmt.Errorf("--api-tokens %s:%d: expected token,principal[,group1|group2]", path, line)
		}
		p := iam.Principal{ID: rec[1]}
		switch len(rec) {
		case 2:
		case 3:
			p.Groups = splitNonEmpty(rec[2], "|")
		case 4:
			p.Groups = splitNonEmpty(rec[3], ",")
		default:
			return nil, "", fmt.Errorf("--api-tokens %s:%d: %d fields, expected token,principal[,group1|group2]", path, line, len(rec))
		}
		if _, dup := m[rec[0]]; dup {
			return nil, "", fmt.Errorf("--api-tokens %s:%d: token used twice", path, line)
		}
		m[rec[0]] = p
	}
	if len(m) == 0 {
		return nil, "", fmt.Errorf("--api-tokens %s: no tokens", path)
	}
	return m, stamp, nil
}

func splitNonEmpty(s, sep string) []string {
	var out []string
	for _, g := range strings.Split(s, sep) {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// lookup compares against every token in constant time per token, so the
// time taken does not reveal a matching prefix.
func (t *Tokens) lookup(token string) (iam.Principal, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.maybeReload()
	var found iam.Principal
	ok := false
	for k, p := range t.byToken {
		if subtle.ConstantTimeCompare([]byte(k), []byte(token)) == 1 {
			found, ok = p, true
		}
	}
	return found, ok
}

// maybeReload re-reads the file when it changed; t.mu is held.
func (t *Tokens) maybeReload() {
	switch stamp, what := t.watch.poll(t.ReloadEvery); what {
	case fileGone:
		t.byToken = nil
		report(t.OnRevoked, fmt.Errorf("--api-tokens %s was deleted: every token of it is revoked until it is back", t.path))
	case fileChanged:
		m, _, err := readTokens(t.path)
		if err != nil {
			if t.watch.failed(stamp) {
				report(t.OnReloadError, err)
			}
			return
		}
		t.byToken = m
		t.watch.stamp = stamp
	}
}

// sessions are the short-lived tokens of assumed agencies, kept in memory
// only: a restart ends every session.
type sessions struct {
	mu sync.Mutex
	m  map[string]session
}

// session is an assumed agency: who assumed it (with the groups they had)
// and the principal the token acts as.
type session struct {
	caller iam.Principal
	as     iam.Principal
}

const sessionPrefix = "igs-"

func (s *sessions) issue(caller, as iam.Principal, now time.Time) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := sessionPrefix + hex.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]session{}
	}
	for k, v := range s.m { // drop expired sessions as new ones come
		if !now.Before(v.as.ExpiresAt) {
			delete(s.m, k)
		}
	}
	s.m[tok] = session{caller: caller, as: as}
	return tok
}

func (s *sessions) lookup(tok string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[tok]
	return p, ok
}

// errAuthUnavailable is a token that could not be checked (the API server
// did not answer a TokenReview): a server error, not the caller's fault.
var errAuthUnavailable = errors.New("could not authenticate the token")

// errExpired is an assumed-agency token past its expiry.
var errExpired = errors.New("the assumed-agency token has expired")

// authenticate finds the caller from Authorization: Bearer or X-Auth-Token
// (Huawei Cloud IAM's header).
func (h *Handler) authenticate(r *http.Request, now time.Time) (iam.Principal, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		tok = r.Header.Get("X-Auth-Token")
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return iam.Principal{}, errors.New("missing bearer token (Authorization: Bearer TOKEN)")
	}
	if strings.HasPrefix(tok, sessionPrefix) {
		s, ok := h.sessions.lookup(tok)
		if !ok {
			return iam.Principal{}, errors.New("unknown token")
		}
		if !now.Before(s.as.ExpiresAt) {
			return iam.Principal{}, errExpired
		}
		// The trust policy is asked again on every use: a token stops
		// working as soon as the agency is deleted, its trust policy no
		// longer names the caller, or the caller calls from where a
		// condition (acs:SourceIp) does not allow.
		trust, live := h.state.load().trusts[s.as.Agency]
		if !live {
			return iam.Principal{}, errors.New("the assumed agency no longer exists")
		}
		if d := trust.Trusts(s.caller, iam.TrustAction, requestContext(r, now)); !d.Allowed {
			return iam.Principal{}, fmt.Errorf("the agency's trust policy no longer lets %s act as it (%s)", s.caller.ID, d.Reason)
		}
		return s.as, nil
	}
	p, ok, err := h.auth.Authenticate(r.Context(), tok)
	if err != nil {
		return iam.Principal{}, fmt.Errorf("%w: %w", errAuthUnavailable, err)
	}
	if !ok {
		return iam.Principal{}, errors.New("unknown token")
	}
	return p, nil
}
