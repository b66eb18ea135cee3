package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/imagegate/imagegate/api"
	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/check"
	"github.com/imagegate/imagegate/iam"
)

// Defaults, in one place.
const (
	DefaultMaxLogins          = 1000
	DefaultLoginsPerPrincipal = 10
	DefaultIdleTimeout        = 30 * time.Minute
	DefaultLoginLifetime      = 8 * time.Hour
	DefaultMaxCheckBytes      = 256 << 10
	DefaultMaxCheckObjects    = 50
	DefaultCheckTimeout       = 20 * time.Second
	// maxJSONBody bounds the bodies of the other requests (sign-in).
	maxJSONBody = 16 << 10
	// maxPolicyPages bounds the management API pages one policies view reads.
	maxPolicyPages = 20
)

// Authority is what the console needs of the management API: its
// authentication, its IAM decisions, and the API itself, through which the
// policies view reads policy objects as the signed-in user.
type Authority interface {
	Authenticate(r *http.Request, token string) (iam.Principal, error)
	Authorize(r *http.Request, p iam.Principal, op, resource string, extra map[string][]string) error
	Decide(r *http.Request, p iam.Principal, op, resource string, extra map[string][]string) bool
	http.Handler
}

var _ Authority = (*api.Handler)(nil)

// Events is the audit event store, through the interfaces both stores
// (bbolt and PostgreSQL) implement.
type Events interface {
	audit.Querier
	audit.Aggregator
}

// Checker decides pasted manifests as imagegate check does.
type Checker interface {
	Check(ctx context.Context, manifest []byte) ([]check.Result, error)
}

type options struct {
	now                func() time.Time
	logger             *slog.Logger
	events             Events
	checker            Checker
	counters           func() map[string]float64
	maxLogins, perUser int
	idle, life         time.Duration
	maxCheckBytes      int64
}

// Option configures a Server.
type Option func(*options)

// WithClock sets the clock (tests move it to expire logins).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger of sign-ins, sign-outs and failures.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithEvents turns on the overview and events views over store.
func WithEvents(store Events) Option { return func(o *options) { o.events = store } }

// WithChecker turns on the "what would happen" box.
func WithChecker(c Checker) Option { return func(o *options) { o.checker = c } }

// WithCounters shows the audit pipeline's drop and error counters on the
// overview (metric name → value).
func WithCounters(fn func() map[string]float64) Option { return func(o *options) { o.counters = fn } }

// WithLoginLimits bounds logins: in all, per principal, idle time and
// lifetime.
func WithLoginLimits(max, perPrincipal int, idle, life time.Duration) Option {
	return func(o *options) { o.maxLogins, o.perUser, o.idle, o.life = max, perPrincipal, idle, life }
}

// WithMaxCheckBytes bounds a pasted manifest.
func WithMaxCheckBytes(n int64) Option { return func(o *options) { o.maxCheckBytes = n } }

// Server serves the console: its assets and its JSON endpoints under /api/.
type Server struct {
	auth     Authority
	opts     options
	logins   *logins
	failures *failures
	assets   *assets
	mux      *http.ServeMux
}

var _ http.Handler = (*Server)(nil)

// New serves the console for the management API auth.
func New(auth Authority, opts ...Option) (*Server, error) {
	o := options{now: time.Now, logger: slog.New(slog.DiscardHandler), maxLogins: DefaultMaxLogins, perUser: DefaultLoginsPerPrincipal,
		idle: DefaultIdleTimeout, life: DefaultLoginLifetime, maxCheckBytes: DefaultMaxCheckBytes}
	for _, fn := range opts {
		fn(&o)
	}
	if auth == nil {
		return nil, errors.New("console: the management API is required (sign-in uses its tokens and policies)")
	}
	if o.maxLogins < 1 || o.perUser < 1 || o.idle <= 0 || o.life <= 0 || o.maxCheckBytes < 1 {
		return nil, errors.New("console: login limits and the check size limit must be positive")
	}
	a, err := loadAssets()
	if err != nil {
		return nil, err
	}
	s := &Server{auth: auth, opts: o, logins: newLogins(o.maxLogins, o.perUser, o.idle, o.life),
		failures: newFailures(DefaultSignInFailures), assets: a, mux: http.NewServeMux()}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /{$}", s.assets.serveIndex)
	s.mux.HandleFunc("GET /assets/{name}", s.assets.serve)
	s.mux.HandleFunc("POST /api/login", s.signIn)
	s.mux.HandleFunc("GET /api/login", s.withLogin(s.whoami))
	s.mux.HandleFunc("DELETE /api/login", s.withLogin(s.signOut))
	s.mux.HandleFunc("GET /api/events", s.withLogin(s.listEvents))
	s.mux.HandleFunc("GET /api/events/{id}", s.withLogin(s.getEvent))
	s.mux.HandleFunc("GET /api/stats", s.withLogin(s.stats))
	s.mux.HandleFunc("GET /api/policies", s.withLogin(s.policies))
	s.mux.HandleFunc("POST /api/check", s.withLogin(s.check))
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no console endpoint "+r.Method+" "+r.URL.Path)
	})
}

// ServeHTTP sets the headers every answer carries: no framing, no sniffing,
// nothing loaded from anywhere but this origin, no caching of data.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	s.mux.ServeHTTP(w, r)
}

// Logins is how many logins are open (for tests and metrics).
func (s *Server) Logins() int { return s.logins.count() }
