package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// IsURL reports whether a store flag names PostgreSQL (postgres:// or
// postgresql://) rather than a bbolt file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redacted is a URL without its password, for messages.
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "postgres://…"
	}
	return u.Redacted()
}

// Option configures a DB.
type Option func(*options)

type options struct {
	maxConns     int32
	writeTimeout time.Duration
	backlog      int
	retryEvery   time.Duration
	logger       *slog.Logger
	registerer   prometheus.Registerer
	now          func() time.Time
}

// Defaults, in one place.
const (
	// DefaultMaxConns bounds the pool: batched audit writes, scan writes
	// and refreshes, and queries (the listener has a connection of its own).
	DefaultMaxConns = 8
	// DefaultWriteTimeout bounds one write of a batch of audit events or a
	// scan import: a stalled database is given up on, not waited for.
	DefaultWriteTimeout = 5 * time.Second
	// DefaultBacklog bounds the audit events held while the database is
	// away; older ones are dropped and counted beyond it.
	DefaultBacklog = 65536
	// DefaultRetryInterval is how often held events are retried when no
	// new ones come.
	DefaultRetryInterval = time.Second
)

func defaults() options {
	return options{maxConns: DefaultMaxConns, writeTimeout: DefaultWriteTimeout, backlog: DefaultBacklog,
		retryEvery: DefaultRetryInterval, logger: slog.New(slog.DiscardHandler), now: time.Now}
}

// WithMaxConns bounds the connection pool.
func WithMaxConns(n int32) Option { return func(o *options) { o.maxConns = n } }

// WithWriteTimeout bounds one write.
func WithWriteTimeout(d time.Duration) Option { return func(o *options) { o.writeTimeout = d } }

// WithBacklog bounds the audit events held while the database is away.
func WithBacklog(n int) Option { return func(o *options) { o.backlog = n } }

// WithRetryInterval sets how often held audit events are retried.
func WithRetryInterval(d time.Duration) Option { return func(o *options) { o.retryEvery = d } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer registers the metrics of the stores opened on the DB.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

func (o *options) validate() error {
	switch {
	case o.maxConns < 1:
		return errors.New("pgstore: at least one connection")
	case o.writeTimeout <= 0:
		return errors.New("pgstore: write timeout must be positive")
	case o.backlog < 0:
		return errors.New("pgstore: backlog must not be negative")
	case o.retryEvery <= 0:
		return errors.New("pgstore: retry interval must be positive")
	case o.logger == nil:
		return errors.New("pgstore: logger must not be nil")
	}
	return nil
}

// DB is a connection pool to one database with imagegate's schema.
type DB struct {
	pool   *pgxpool.Pool
	o      options
	ctx    context.Context // ends with Close: background work (the listener, retries)
	cancel context.CancelFunc
}

// Open connects to the database at rawURL (TLS as its sslmode,
// sslrootcert, sslcert and sslkey say) and migrates its schema.
func Open(ctx context.Context, rawURL string, opts ...Option) (*DB, error) {
	o := defaults()
	for _, fn := range opts {
		fn(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		// pgx's message may quote the URL, password and all.
		return nil, fmt.Errorf("postgres URL %s: not a valid connection URL", Redacted(rawURL))
	}
	cfg.MaxConns = o.maxConns
	cfg.ConnConfig.RuntimeParams["application_name"] = "imagegate"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", Redacted(rawURL), err)
	}
	applied, err := migrate(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres %s: %w", Redacted(rawURL), err)
	}
	if len(applied) > 0 {
		o.logger.Info("postgres schema migrated", "versions", applied)
	}
	bg, cancel := context.WithCancel(context.Background())
	return &DB{pool: pool, o: o, ctx: bg, cancel: cancel}, nil
}

// Close ends background work and closes the pool.
func (db *DB) Close() {
	db.cancel()
	db.pool.Close()
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }
