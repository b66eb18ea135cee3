package webhook

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/imagegate/imagegate/attestation"
	"github.com/prometheus/client_golang/prometheus"
)

// Option configures a Handler.
type Option func(*options)

type options struct {
	exempt         map[string]bool
	defaultTimeout time.Duration
	maxInFlight    int
	maxBodyBytes   int64
	maxImages      int
	failOpen       bool
	logger         *slog.Logger
	registerer     prometheus.Registerer
	auditor        Auditor
	keychains      attestation.KeychainSource
}

// Defaults, in one place.
const (
	DefaultTimeout = 10 * time.Second // the API server's default webhook timeout
	// MaxTimeout caps the API server's timeout parameter: it allows at most
	// timeoutSeconds: 30, so a longer one did not come from an API server and
	// would only let a caller hold a decision slot longer.
	MaxTimeout = 30 * time.Second
	// MinTimeout is the shortest timeout a decision is attempted in. The API
	// server sends at least 1s; below this no decision can finish, and the
	// honest answer is that the deadline is too short.
	MinTimeout          = 100 * time.Millisecond
	DefaultMaxInFlight  = 512
	DefaultMaxBodyBytes = 3 << 20 // the API server's own request limit
	// DefaultMaxImages bounds the distinct images of one workload: each may
	// cost registry round trips, so thousands would outlast any deadline.
	DefaultMaxImages = 64
)

// DefaultExemptNamespaces are left alone unless configured otherwise.
var DefaultExemptNamespaces = []string{"kube-system"}

func defaults() options {
	o := options{
		exempt:         map[string]bool{},
		defaultTimeout: DefaultTimeout,
		maxInFlight:    DefaultMaxInFlight,
		maxBodyBytes:   DefaultMaxBodyBytes,
		maxImages:      DefaultMaxImages,
		logger:         slog.New(slog.DiscardHandler),
	}
	for _, ns := range DefaultExemptNamespaces {
		o.exempt[ns] = true
	}
	return o
}

// WithExemptNamespaces replaces the namespaces whose requests are admitted
// without a decision.
func WithExemptNamespaces(ns ...string) Option {
	return func(o *options) {
		o.exempt = map[string]bool{}
		for _, n := range ns {
			o.exempt[n] = true
		}
	}
}

// WithDefaultTimeout is the budget when the API server sends no timeout.
func WithDefaultTimeout(d time.Duration) Option { return func(o *options) { o.defaultTimeout = d } }

// WithMaxInFlight bounds concurrent decisions; requests beyond it wait for a
// slot within their deadline.
func WithMaxInFlight(n int) Option { return func(o *options) { o.maxInFlight = n } }

// WithMaxBodyBytes bounds the request body.
func WithMaxBodyBytes(n int64) Option { return func(o *options) { o.maxBodyBytes = n } }

// WithMaxImages bounds the distinct images of a workload; one with more is
// denied without looking at any of them.
func WithMaxImages(n int) Option { return func(o *options) { o.maxImages = n } }

// WithFailOpen admits (with a warning) requests that could not be decided in
// time or at all, instead of denying them.
func WithFailOpen(allow bool) Option { return func(o *options) { o.failOpen = allow } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer registers the handler's metrics.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithAuditor hands every answered request to a (non-blocking) auditor,
// which records those that are not a plain pass.
func WithAuditor(a Auditor) Option { return func(o *options) { o.auditor = a } }

// WithPullCredentials resolves each pod's tags with its pull secrets (and
// its service account's) before the process keychain, as the kubelet pulls
// (kube.PullSecrets); for the Mutator.
func WithPullCredentials(ks attestation.KeychainSource) Option {
	return func(o *options) { o.keychains = ks }
}

func (o *options) validate() error {
	switch {
	case o.defaultTimeout < MinTimeout || o.defaultTimeout > MaxTimeout:
		return fmt.Errorf("webhook: default timeout %v: must be between %v and %v", o.defaultTimeout, MinTimeout, MaxTimeout)
	case o.maxInFlight <= 0:
		return errors.New("webhook: max in flight must be positive")
	case o.maxBodyBytes <= 0:
		return errors.New("webhook: max body bytes must be positive")
	case o.maxImages <= 0:
		return errors.New("webhook: max images must be positive")
	case o.logger == nil:
		return errors.New("webhook: logger must not be nil")
	}
	return nil
}
