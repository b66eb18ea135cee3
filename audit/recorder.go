package audit

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sink writes events somewhere. Write is called from the recorder's one
// background goroutine with a batch of events in time order; an error is
// counted and logged, and the batch is not retried (a sink that can recover
// later must not block now).
type Sink interface {
	Name() string
	Write(events []*Event) error
}

// Option configures a Recorder.
type Option func(*options)

type options struct {
	queueSize   int
	batchSize   int
	clusterID   string
	logger      *slog.Logger
	registerer  prometheus.Registerer
	logInterval time.Duration
	now         func() time.Time

	refusalWindow time.Duration
	refusalKeys   int

	sync        bool
	syncTimeout time.Duration
}

// Defaults, in one place.
const (
	DefaultQueueSize = 8192
	DefaultBatchSize = 256
	// dropLogInterval rate-limits the log line about dropped events (and
	// sink errors): a full queue under load would otherwise flood the log.
	dropLogInterval = 10 * time.Second
)

func defaults() options {
	return options{queueSize: DefaultQueueSize, batchSize: DefaultBatchSize, logger: slog.New(slog.DiscardHandler),
		logInterval: dropLogInterval, now: time.Now, refusalWindow: DefaultRefusalWindow, refusalKeys: DefaultRefusalKeys,
		syncTimeout: DefaultSyncTimeout}
}

// WithQueueSize bounds the events waiting for the sinks; beyond it events are dropped.
func WithQueueSize(n int) Option { return func(o *options) { o.queueSize = n } }

// WithBatchSize bounds the events handed to a sink at once.
func WithBatchSize(n int) Option { return func(o *options) { o.batchSize = n } }

// WithClusterID names the cluster in events the engine does not name (undecided requests).
func WithClusterID(id string) Option { return func(o *options) { o.clusterID = id } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer registers the recorder's metrics.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithLogInterval sets how often, at most, drops and sink errors are logged.
func WithLogInterval(d time.Duration) Option { return func(o *options) { o.logInterval = d } }

func (o *options) validate() error {
	switch {
	case o.queueSize <= 0:
		return errors.New("audit: queue size must be positive")
	case o.batchSize <= 0:
		return errors.New("audit: batch size must be positive")
	case o.logger == nil:
		return errors.New("audit: logger must not be nil")
	case o.logInterval <= 0:
		return errors.New("audit: log interval must be positive")
	case o.refusalWindow <= 0:
		return errors.New("audit: refusal window must be positive")
	case o.refusalKeys <= 0:
		return errors.New("audit: refusal keys must be positive")
	case o.syncTimeout <= 0:
		return errors.New("audit: sync timeout must be positive")
	}
	return nil
}

// Recorder queues admissions and writes their events to sinks in the
// background. Record never blocks.
type Recorder struct {
	opts    options
	sinks   []Sink // the file and the store first (durable), then the others
	durable int    // how many of sinks are durable
	queue   chan Admission
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once

	dropped      prometheus.Counter
	aggregated   prometheus.Counter
	syncTimeouts prometheus.Counter
	events       *prometheus.CounterVec
	sinkErrors   *prometheus.CounterVec
	dropLog      rateLimit
	errLog       rateLimit
	refused      *refusals

	idPrefix uint32
	seq      uint32
	// waiting are the admissions of the batch being written whose Record
	// waits for the durable sinks (sync mode).
	waiting []chan struct{}
}

// NewRecorder starts a recorder writing to sinks; Close stops it.
func NewRecorder(sinks []Sink, opts ...Option) (*Recorder, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	r := &Recorder{
		opts: o, queue: make(chan Admission, o.queueSize), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagegate_audit_events_dropped_total",
			Help: "Audit events dropped because the queue was full (sinks too slow).",
		}),
		syncTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagegate_audit_sync_timeouts_total",
			Help: "Admissions answered in --audit-sync mode before their event was committed (the sinks took longer than the sync timeout).",
		}),
		aggregated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagegate_audit_api_refusals_aggregated_total",
			Help: "Refused management API calls counted into a summary event instead of recorded one by one.",
		}),
		refused: newRefusals(o.refusalWindow, o.refusalKeys),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_audit_events_total",
			Help: "Audit events written, by sink.",
		}, []string{"sink"}),
		sinkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_audit_sink_errors_total",
			Help: "Audit event batches a sink failed to write (events lost for that sink), by sink.",
		}, []string{"sink"}),
		dropLog:  rateLimit{every: o.logInterval},
		errLog:   rateLimit{every: o.logInterval},
		idPrefix: uint32(o.now().UnixNano()), // distinct ids across restarts within one nanosecond
	}
	if o.registerer != nil {
		if err := errors.Join(o.registerer.Register(r.dropped), o.registerer.Register(r.aggregated), o.registerer.Register(r.syncTimeouts), o.registerer.Register(r.events), o.registerer.Register(r.sinkErrors)); err != nil {
			return nil, err
		}
	}
	for _, s := range sinks {
		if _, ok := s.(durableSink); ok {
			r.sinks = append(r.sinks, s)
		}
	}
	r.durable = len(r.sinks)
	for _, s := range sinks {
		if _, ok := s.(durableSink); !ok {
			r.sinks = append(r.sinks, s)
		}
	}
	for _, s := range sinks {
		r.events.WithLabelValues(s.Name())
		r.sinkErrors.WithLabelValues(s.Name())
	}
	go r.run()
	return r, nil
}

// Record queues an admission if it is an event (not a plain pass). It never
// blocks: with the queue full the event is dropped and counted.
func (r *Recorder) Record(a Admission) {
	if !a.Notable() {
		return
	}
	if a.Time.IsZero() {
		a.Time = r.opts.now()
	}
	if r.opts.sync {
		r.recordSync(a)
		return
	}
	r.enqueue(a)
}

func (r *Recorder) enqueue(a Admission) {
	select {
	case r.queue <- a:
	default:
		r.dropped.Inc()
		if n, ok := r.dropLog.tick(r.opts.now()); ok {
			r.opts.logger.Warn("audit events dropped: the queue is full (a sink is too slow or stalled)", "dropped", n, "queue", r.opts.queueSize)
		}
	}
}

// Close stops accepting the queue's further work, writes what is queued,
// and closes sinks that are io.Closers.
func (r *Recorder) Close() error {
	r.closing.Do(func() { close(r.stop) })
	<-r.done
	var errs []error
	for _, s := range r.sinks {
		if c, ok := s.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// pollInterval is how often an idle worker looks at the queue. The worker
// polls rather than waits on the channel so that Record never has to wake a
// parked goroutine (a microsecond or more on a busy node); events reach the
// sinks at most this much later.
const pollInterval = 5 * time.Millisecond

func (r *Recorder) run() {
	defer close(r.done)
	idx := &strategyIndex{}
	batch := make([]*Event, 0, r.opts.batchSize)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		stopping := false
		select {
		case <-r.stop:
			stopping = true
		case <-tick.C:
		case <-r.wake:
		}
		// Take what is queued, a batch at a time, so a busy period costs a
		// sink one write per batch rather than per event.
		for {
			n := len(r.queue)
			if n == 0 {
				break
			}
			for range min(n, r.opts.batchSize) {
				a := <-r.queue
				if a.committed != nil {
					r.waiting = append(r.waiting, a.committed)
				}
				switch {
				case a.api != nil:
					batch = append(batch, buildAPI(&a, r.nextID(a.Time), r.opts.clusterID))
				case a.runtime != nil:
					batch = append(batch, idx.buildRuntime(&a, r.nextID(a.Time), r.opts.clusterID))
				default:
					batch = append(batch, idx.build(&a, r.nextID(a.Time), r.opts.clusterID))
				}
			}
			r.write(batch)
			clear(batch)
			batch = batch[:0]
		}
		// Summaries of refused API calls, when their window ended.
		for _, a := range r.refused.due(r.opts.now(), stopping) {
			batch = append(batch, buildAPI(&a, r.nextID(a.Time), r.opts.clusterID))
		}
		r.write(batch)
		clear(batch)
		batch = batch[:0]
		if stopping {
			return
		}
	}
}

func (r *Recorder) write(batch []*Event) {
	if len(batch) == 0 {
		return
	}
	for i, s := range r.sinks {
		if i == r.durable {
			r.release()
		}
		if err := s.Write(batch); err != nil {
			r.sinkErrors.WithLabelValues(s.Name()).Inc()
			if n, ok := r.errLog.tick(r.opts.now()); ok {
				r.opts.logger.Error("audit sink failed to write a batch (lost for that sink, unless the error says it holds them)", "sink", s.Name(), "error", err.Error(), "failures", n)
			}
			continue
		}
		r.events.WithLabelValues(s.Name()).Add(float64(len(batch)))
	}
	r.release()
}

// nextID is a time-ordered event id: the event time in nanoseconds, then a
// per-process prefix and sequence so ids never collide.
func (r *Recorder) nextID(t time.Time) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], uint64(t.UnixNano()))
	binary.BigEndian.PutUint32(id[8:12], r.idPrefix)
	r.seq++
	binary.BigEndian.PutUint32(id[12:], r.seq)
	return id
}

// rateLimit lets one log line through per interval and counts the
// occurrences in between.
type rateLimit struct {
	every time.Duration
	last  atomic.Int64
	count atomic.Int64
}

func (l *rateLimit) tick(now time.Time) (int64, bool) {
	n := l.count.Add(1)
	last := l.last.Load()
	if now.UnixNano()-last < int64(l.every) || !l.last.CompareAndSwap(last, now.UnixNano()) {
		return 0, false
	}
	l.count.Add(-n)
	return n, true
}
