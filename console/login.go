package console

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/imagegate/imagegate/iam"
)

// login is one signed-in browser. The token is kept (in memory only) so
// that every request re-authenticates it: a token revoked in the tokens
// file, or an assumed agency's token that expired, ends the login.
type login struct {
	mu        sync.Mutex // guards reads
	key       [32]byte   // sha256 of the cookie value
	principal iam.Principal
	token     string
	csrf      string
	created   time.Time
	lastSeen  time.Time
	// reads are the allowed reads recorded lately (operation and
	// namespace → when), bounded by maxRecorded.
	reads map[string]time.Time
}

// recordEvery is how often a login's repeated allowed read is recorded.
const recordEvery = 10 * time.Minute

// maxRecorded bounds a login's memory of recorded reads.
const maxRecorded = 64

// recorded reports whether key was recorded within recordEvery.
func (ss *login) recorded(key string, now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	at, ok := ss.reads[key]
	return ok && now.Sub(at) < recordEvery && !now.Before(at)
}

func (ss *login) record(key string, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.reads == nil || len(ss.reads) >= maxRecorded {
		ss.reads = map[string]time.Time{}
	}
	ss.reads[key] = now
}

// logins are bounded in count (in all, and per principal) and in time
// (idle and absolute).
type logins struct {
	mu           sync.Mutex
	m            map[[32]byte]*login
	max          int
	perPrincipal int
	idle, life   time.Duration
}

// ErrTooManyLogins refuses a sign-in while every login slot is taken
// by a live login.
var ErrTooManyLogins = errors.New("too many console logins: try again later")

func newLogins(max, perPrincipal int, idle, life time.Duration) *logins {
	return &logins{m: map[[32]byte]*login{}, max: max, perPrincipal: perPrincipal, idle: idle, life: life}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *logins) expired(ss *login, now time.Time) bool {
	return !now.Before(ss.lastSeen.Add(s.idle)) || !now.Before(ss.created.Add(s.life))
}

// open starts a login and returns its cookie value. A principal's oldest
// login goes when it has perPrincipal already; expired logins go as
// new ones come.
func (s *logins) open(p iam.Principal, token string, now time.Time) (string, *login, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest *login
	mine := 0
	for k, ss := range s.m {
		if s.expired(ss, now) {
			delete(s.m, k)
			continue
		}
		if ss.principal.ID == p.ID && ss.principal.Agency == p.Agency {
			mine++
			if oldest == nil || ss.created.Before(oldest.created) {
				oldest = ss
			}
		}
	}
	if mine >= s.perPrincipal && oldest != nil {
		delete(s.m, oldest.key)
	}
	if len(s.m) >= s.max {
		return "", nil, ErrTooManyLogins
	}
	cookie := randomHex(32)
	ss := &login{key: sha256.Sum256([]byte(cookie)), principal: p, token: token, csrf: randomHex(32), created: now, lastSeen: now}
	s.m[ss.key] = ss
	return cookie, ss, nil
}

// get finds the live login of a cookie value and marks it seen.
func (s *logins) get(cookie string, now time.Time) (*login, bool) {
	key := sha256.Sum256([]byte(cookie))
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[key]
	if !ok {
		return nil, false
	}
	if s.expired(ss, now) {
		delete(s.m, key)
		return nil, false
	}
	ss.lastSeen = now
	return ss, true
}

func (s *logins) close(ss *login) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, ss.key)
}

func (s *logins) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
