package audit

import "time"

// DefaultSyncTimeout bounds how long Record waits in sync mode.
const DefaultSyncTimeout = 10 * time.Second

// WithSync makes Record return only once the event is committed to the
// durable sinks (the file and the store), so that an acknowledged
// admission's event survives a crash (kill -9) of the process. It costs
// each notable admission the wait for one batch write (events arriving
// together share a transaction); see docs/benchmarks.md. Kubernetes sinks
// are written after and not waited for. A Record that waited timeout in
// vain returns anyway, counted in imagegate_audit_sync_timeouts_total and
// logged: admission never hangs on a stalled disk.
func WithSync(timeout time.Duration) Option {
	return func(o *options) { o.sync, o.syncTimeout = true, timeout }
}

// durableSink marks the sinks sync mode waits for: what they wrote survives
// the process (the file in the page cache, the store fsynced).
type durableSink interface{ durable() }

func (*Store) durable()    {}
func (*FileSink) durable() {}

// recordSync queues a and waits until the durable sinks wrote it.
func (r *Recorder) recordSync(a Admission) {
	committed := make(chan struct{})
	a.committed = committed
	timer := time.NewTimer(r.opts.syncTimeout)
	defer timer.Stop()
	select {
	case r.queue <- a:
	case <-timer.C:
		r.syncTimedOut("the queue stayed full")
		return
	}
	select {
	case r.wake <- struct{}{}:
	default: // the worker is awake already
	}
	select {
	case <-committed:
	case <-timer.C:
		r.syncTimedOut("the sinks did not commit in time")
	}
}

func (r *Recorder) syncTimedOut(why string) {
	r.syncTimeouts.Inc()
	if n, ok := r.errLog.tick(r.opts.now()); ok {
		r.opts.logger.Error("audit event not committed before the admission answer: "+why, "timeout", r.opts.syncTimeout.String(), "count", n)
	}
}

// release lets the Records waiting for the batch just written return.
func (r *Recorder) release() {
	for _, c := range r.waiting {
		close(c)
	}
	clear(r.waiting)
	r.waiting = r.waiting[:0]
}
