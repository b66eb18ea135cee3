package compliance

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Option configures a Monitor.
type Option func(*options)

type options struct {
	log          *slog.Logger
	registerer   prometheus.Registerer
	maxScanAge   time.Duration
	concurrency  int
	timeout      time.Duration
	debounce     time.Duration
	enginePoll   time.Duration
	resync       time.Duration
	leader       func() bool
	sinks        []Sink
	exempt       map[string]bool
	now          func() time.Time
	maxWorkloads int
}

// Defaults, in one place.
const (
	DefaultConcurrency = 1
	DefaultTimeout     = 10 * time.Second
	DefaultDebounce    = 50 * time.Millisecond
	DefaultEnginePoll  = 100 * time.Millisecond
	DefaultResync      = 10 * time.Minute
	// DefaultMaxWorkloads bounds the states kept; past it new workloads
	// are not judged (and counted), so a flood of pods cannot grow memory
	// without end.
	DefaultMaxWorkloads = 200_000
)

func defaults() options {
	return options{log: slog.New(slog.DiscardHandler), concurrency: DefaultConcurrency, timeout: DefaultTimeout,
		debounce: DefaultDebounce, enginePoll: DefaultEnginePoll, resync: DefaultResync, leader: func() bool { return true },
		exempt: map[string]bool{}, now: time.Now, maxWorkloads: DefaultMaxWorkloads}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the monitor's metrics.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithMaxScanAge is serve's --max-scan-age: a workload is decided again
// when one of its scans ages past it.
func WithMaxScanAge(d time.Duration) Option { return func(o *options) { o.maxScanAge = d } }

// WithConcurrency bounds the workloads decided at once (admissions come
// first: keep it below the cores).
func WithConcurrency(n int) Option { return func(o *options) { o.concurrency = n } }

// WithTimeout bounds one workload's decision (signature fetches included).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithDebounce sets how long changes are gathered before deciding.
func WithDebounce(d time.Duration) Option { return func(o *options) { o.debounce = d } }

// WithResync sets the full pass that catches what no notification names
// (a signature pushed or removed in a registry); 0 turns it off.
func WithResync(d time.Duration) Option { return func(o *options) { o.resync = d } }

// WithLeader says whether this replica reports: every replica decides
// (so any can answer the API and take over at once), only the leader writes
// reports, events and annotations and exports the gauge.
func WithLeader(fn func() bool) Option { return func(o *options) { o.leader = fn } }

// WithSinks adds where changes are reported.
func WithSinks(s ...Sink) Option { return func(o *options) { o.sinks = append(o.sinks, s...) } }

// WithExemptNamespaces leaves namespaces undecided, as admission does.
func WithExemptNamespaces(ns ...string) Option {
	return func(o *options) {
		for _, n := range ns {
			o.exempt[n] = true
		}
	}
}

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithMaxWorkloads bounds the workloads tracked.
func WithMaxWorkloads(n int) Option { return func(o *options) { o.maxWorkloads = n } }

func (o *options) validate() error {
	switch {
	case o.concurrency <= 0:
		return errors.New("compliance: concurrency must be positive")
	case o.timeout <= 0:
		return errors.New("compliance: timeout must be positive")
	case o.debounce < 0 || o.resync < 0 || o.maxScanAge < 0:
		return errors.New("compliance: durations must not be negative")
	case o.enginePoll <= 0:
		return errors.New("compliance: engine poll interval must be positive")
	case o.maxWorkloads <= 0:
		return errors.New("compliance: max workloads must be positive")
	case o.log == nil || o.leader == nil || o.now == nil:
		return errors.New("compliance: logger, leader and clock must not be nil")
	}
	return nil
}
