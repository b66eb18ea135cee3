package compliance

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Lease elects, among imagegate's replicas, the one that reports: a
// coordination.k8s.io Lease (client-go's leader election). Every replica
// decides; only the holder writes reports, Events, audit events and
// annotations, so each workload is reported once.
type Lease struct {
	leader atomic.Bool
	done   chan struct{}
}

// Lease timing: a crashed leader is replaced within LeaseDuration.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// NewLease starts competing for the Lease name in namespace as identity
// until ctx ends; a replica that loses it competes again.
func NewLease(ctx context.Context, client kubernetes.Interface, namespace, name, identity string, log *slog.Logger) (*Lease, error) {
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, namespace, name, client.CoreV1(), client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: identity})
	if err != nil {
		return nil, err
	}
	l := &Lease{done: make(chan struct{})}
	cfg := leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod, ReleaseOnCancel: true,
		Name: name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				l.leader.Store(true)
				log.Info("runtime compliance: this replica reports", "lease", namespace+"/"+name, "identity", identity)
			},
			OnStoppedLeading: func() {
				l.leader.Store(false)
				log.Info("runtime compliance: this replica stopped reporting", "lease", namespace+"/"+name, "identity", identity)
			},
		},
	}
	le, err := leaderelection.NewLeaderElector(cfg)
	if err != nil {
		return nil, err
	}
	go func() {
		defer close(l.done)
		for ctx.Err() == nil {
			le.Run(ctx)
		}
	}()
	return l, nil
}

// Wait waits, at most d, until the Lease was released after ctx ended, so
// that another replica takes over at once rather than when it lapses.
func (l *Lease) Wait(d time.Duration) {
	select {
	case <-l.done:
	case <-time.After(d):
	}
}

// Leader reports whether this replica holds the Lease.
func (l *Lease) Leader() bool { return l.leader.Load() }
