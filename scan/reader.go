package scan

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reader keeps an Index in step with a store other processes write to
// (imagegate scan import, the scans endpoint, other replicas). Admissions
// read the Index only: a store that cannot be reached leaves the facts as
// last read, never an admission waiting on it.
type Reader struct {
	log ChangeLog
	idx *Index
	o   readerOptions

	mu  sync.Mutex // one refresh at a time
	seq uint64

	stateMu   sync.Mutex
	failing   error     // the last refresh's error; nil when it succeeded
	failSince time.Time // when refreshes started failing
	lastOK    time.Time

	up     prometheus.Gauge
	errors prometheus.Counter

	hookMu sync.Mutex
	hooks  []func(keys []string)
}

// OnChange calls fn after each refresh that applied writes, with the keys
// they touched ("d:<digest>", "r:<repository:tag>", "m:<digest>"), so that
// what was decided on the old facts can be decided again. fn runs on the
// refreshing goroutine and must not block.
func (r *Reader) OnChange(fn func(keys []string)) {
	r.hookMu.Lock()
	r.hooks = append(r.hooks, fn)
	r.hookMu.Unlock()
}

func (r *Reader) notify(keys []string) {
	if len(keys) == 0 {
		return
	}
	r.hookMu.Lock()
	hooks := r.hooks
	r.hookMu.Unlock()
	for _, fn := range hooks {
		fn(keys)
	}
}

// ReaderOption configures a Reader.
type ReaderOption func(*readerOptions)

type readerOptions struct {
	batch      int
	timeout    time.Duration
	registerer prometheus.Registerer
	now        func() time.Time
	limits     IndexLimits
}

// Defaults of a Reader, in one place.
const (
	// DefaultRefreshBatch bounds the changes read in one round trip.
	DefaultRefreshBatch = 5000
	// DefaultRefreshTimeout bounds one refresh: a store that does not
	// answer is reported, and the index stays as it was.
	DefaultRefreshTimeout = 10 * time.Second
)

// WithReaderRegisterer registers the reader's metrics
// (imagegate_scan_store_up, imagegate_scan_store_refresh_errors_total,
// imagegate_scan_index_records, _bytes and _evictions_total).
func WithReaderRegisterer(r prometheus.Registerer) ReaderOption {
	return func(o *readerOptions) { o.registerer = r }
}

// WithRefreshTimeout bounds one refresh.
func WithRefreshTimeout(d time.Duration) ReaderOption {
	return func(o *readerOptions) { o.timeout = d }
}

// WithIndexLimits bounds the reader's index (zero fields keep the
// defaults, DefaultIndexEntries and DefaultIndexBytes).
func WithIndexLimits(l IndexLimits) ReaderOption {
	return func(o *readerOptions) { o.limits = l }
}

// NewReader loads everything log holds into a new index.
func NewReader(ctx context.Context, log ChangeLog, opts ...ReaderOption) (*Reader, error) {
	o := readerOptions{batch: DefaultRefreshBatch, timeout: DefaultRefreshTimeout, now: time.Now}
	for _, fn := range opts {
		fn(&o)
	}
	getter, _ := log.(Getter)
	r := &Reader{log: log, idx: newIndex(o.limits, getter), o: o,
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "imagegate_scan_store_up",
			Help: "1 when the last refresh of scan facts from the scan store succeeded; 0 while admissions use the facts last read."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "imagegate_scan_store_refresh_errors_total",
			Help: "Refreshes of scan facts from the scan store that failed."}),
	}
	if o.registerer != nil {
		idx := r.idx
		records := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "imagegate_scan_index_records",
			Help: "Scan records held in memory (bounded by --scan-index-entries)."}, func() float64 { return float64(idx.Len()) })
		bytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "imagegate_scan_index_bytes",
			Help: "Bytes the in-memory scan records count for (bounded by --scan-index-bytes)."}, func() float64 { return float64(idx.Bytes()) })
		evicted := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "imagegate_scan_index_evictions_total",
			Help: "Scan records evicted from memory; once any is, lookups that miss read the store."}, func() float64 { return float64(idx.Evicted()) })
		if err := errors.Join(o.registerer.Register(r.up), o.registerer.Register(r.errors), o.registerer.Register(records),
			o.registerer.Register(bytes), o.registerer.Register(evicted)); err != nil {
			return nil, err
		}
	}
	if _, err := r.refresh(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// OpenReader loads the store file at path; a missing file is an empty store.
func OpenReader(path string) (*Reader, error) {
	return NewReader(context.Background(), NewFile(path))
}

// Index is the reader's index, updated in place by Refresh.
func (r *Reader) Index() *Index { return r.idx }

// Refresh loads what was written since the last refresh.
func (r *Reader) Refresh() (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.o.timeout)
	defer cancel()
	return r.refresh(ctx)
}

func (r *Reader) refresh(ctx context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := r.seq
	var keys []string
	defer func() { r.notify(keys) }()
	for {
		changes, seq, err := r.log.Changes(ctx, r.seq, r.o.batch)
		if err != nil {
			r.failed(err)
			return r.seq != start, err
		}
		for _, c := range changes {
			r.idx.apply(c)
			keys = append(keys, c.Key)
		}
		r.seq = seq
		if len(changes) < r.o.batch {
			break
		}
	}
	r.succeeded()
	return r.seq != start, nil
}

func (r *Reader) failed(err error) {
	r.errors.Inc()
	r.up.Set(0)
	r.stateMu.Lock()
	if r.failing == nil {
		r.failSince = r.o.now()
	}
	r.failing = err
	r.stateMu.Unlock()
}

func (r *Reader) succeeded() {
	r.up.Set(1)
	r.stateMu.Lock()
	r.failing, r.lastOK = nil, r.o.now()
	r.stateMu.Unlock()
}

// Status is empty while refreshes succeed; otherwise it says since when
// they fail and how old the facts in use are (a /readyz detail: admissions
// go on from memory, so the replica stays ready).
func (r *Reader) Status() string {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	if r.failing == nil {
		return ""
	}
	return fmt.Sprintf("scan store unreachable since %s (%v); scan facts as last read at %s",
		r.failSince.UTC().Format(time.RFC3339), r.failing, r.lastOK.UTC().Format(time.RFC3339))
}

// Watch refreshes every interval, and at once when the store notifies a
// write, until ctx ends, reporting an error when it first occurs.
func (r *Reader) Watch(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var notified <-chan struct{}
	if n, ok := r.log.(Notifier); ok {
		notified = n.Notify()
	}
	reported := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-notified:
		}
		_, err := r.Refresh()
		switch {
		case err == nil:
			reported = ""
		case err.Error() != reported && onError != nil:
			// Once per outage and kind of error, not every interval.
			reported = err.Error()
			onError(err)
		}
	}
}
