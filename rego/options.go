package rego

import (
	"errors"
	"time"
)

// Option configures an Engine.
type Option func(*options)

type options struct {
	clusterID  string
	maxScanAge time.Duration
	failOpen   bool
	now        func() time.Time
	cacheSize  int
}

// DefaultDecisionCacheSize is how many decisions an engine remembers.
const DefaultDecisionCacheSize = 4096

func defaults() options {
	return options{now: time.Now, cacheSize: DefaultDecisionCacheSize}
}

// WithDecisionCache sets how many decisions the engine remembers by their
// complete input; 0 turns the cache off.
func WithDecisionCache(size int) Option { return func(o *options) { o.cacheSize = size } }

// WithClusterID sets the cluster the engine decides for. Without it (the
// empty id) every cluster's scopes apply at once, which is what imagegate
// check does when no --cluster-id is given.
func WithClusterID(id string) Option { return func(o *options) { o.clusterID = id } }

// WithMaxScanAge makes scan results older than d count as unscanned. Zero (the
// default) keeps every scan result.
func WithMaxScanAge(d time.Duration) Option { return func(o *options) { o.maxScanAge = d } }

// WithVerificationErrorsAllowed admits images whose attestors could not be
// checked at all (registry unreachable, timeout), with a warning, instead of
// failing closed (--on-verification-error=allow).
func WithVerificationErrorsAllowed(allow bool) Option { return func(o *options) { o.failOpen = allow } }

// WithClock sets the clock scan ages are measured against.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

func (o *options) validate() error {
	if o.maxScanAge < 0 {
		return errors.New("rego: max scan age must not be negative")
	}
	if o.cacheSize < 0 {
		return errors.New("rego: decision cache size must not be negative")
	}
	if o.now == nil {
		return errors.New("rego: clock must not be nil")
	}
	return nil
}
