package compliance

import (
	"container/heap"
	"context"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/inventory"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/workload"
)

// Decider decides one workload; *admission.Decider is one.
type Decider interface {
	DecideOutcome(ctx context.Context, obj *workload.Object) (admission.Outcome, error)
}

var _ Decider = (*admission.Decider)(nil)

// Inventory is the set of workloads; *inventory.Inventory is one.
type Inventory interface {
	Keys() []inventory.Key
	Workload(k inventory.Key) (inventory.Workload, bool)
	ByDigest(d string) []inventory.Key
}

var _ Inventory = (*inventory.Inventory)(nil)

// Change is a workload whose state changed. Old is nil for a workload
// decided for the first time, New nil for one whose pods are gone.
type Change struct {
	Key      inventory.Key
	Cause    Cause
	Old, New *State
}

// Kind says what a change is for reports: violating (newly), changed (still
// violating, differently), resolved (compliant again), new (first seen),
// gone (no pods left) or compliant (changed, never violating).
func (c Change) Kind() string {
	switch {
	case c.New == nil:
		return "gone"
	case c.Old == nil:
		return "new"
	case c.New.Violating() && !c.Old.Violating():
		return "violating"
	case c.New.Violating():
		return "changed"
	case c.Old.Violating():
		return "resolved"
	}
	return "compliant"
}

// Notable reports whether a change is worth an event: a workload already
// known that started or stopped violating, or violates differently.
// First decisions are not: admission reported the pod, and a restart is no
// change.
func (c Change) Notable() bool {
	switch c.Kind() {
	case "violating", "changed", "resolved":
		return true
	}
	return false
}

// Sink is told about changes, on the leader only, in the order they were
// decided. It must not block for long: the next decisions wait.
type Sink interface {
	Changed(ctx context.Context, changes []Change)
}

// Reconciler is a Sink that rewrites everything it keeps from the full
// state when this replica becomes the leader.
type Reconciler interface {
	Reconcile(ctx context.Context, states []*State)
}

// Monitor decides the inventory's workloads and decides again on change.
type Monitor struct {
	inv     Inventory
	dec     Decider
	engines admission.EngineProvider
	o       options
	metrics *metrics

	mu         sync.Mutex
	states     map[inventory.Key]*State
	byDigest   map[string]map[inventory.Key]struct{}
	byRef      map[string]map[inventory.Key]struct{}
	byStrategy map[int64]map[inventory.Key]struct{}
	pending    map[inventory.Key]Cause
	all        *Cause
	expiry     expiryHeap
	synced     bool
	kick       chan struct{}

	names  strategyNames
	engine *rego.Engine // the engine of the last full pass
	leader bool
}

// New returns a Monitor; Run starts it.
func New(inv Inventory, dec Decider, engines admission.EngineProvider, opts ...Option) (*Monitor, error) {
	o := defaults()
	for _, fn := range opts {
		fn(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	m := &Monitor{inv: inv, dec: dec, engines: engines, o: o, states: map[inventory.Key]*State{},
		byDigest: map[string]map[inventory.Key]struct{}{}, byRef: map[string]map[inventory.Key]struct{}{},
		byStrategy: map[int64]map[inventory.Key]struct{}{}, pending: map[inventory.Key]Cause{}, kick: make(chan struct{}, 1)}
	var err error
	if m.metrics, err = newMetrics(o.registerer); err != nil {
		return nil, err
	}
	return m, nil
}

// AddSinks adds where changes are reported; call it before Run.
func (m *Monitor) AddSinks(s ...Sink) { m.o.sinks = append(m.o.sinks, s...) }

// PodChanged is the inventory's change callback.
func (m *Monitor) PodChanged(k inventory.Key) {
	m.mark(k, Cause{Trigger: TriggerPod})
}

// ScanChanged is the scan reader's change callback: the workloads with an
// image of a changed digest or tag are decided again.
func (m *Monitor) ScanChanged(keys []string) {
	m.mu.Lock()
	var hits []inventory.Key
	var causes []Cause
	for _, key := range keys {
		kind, v, _ := strings.Cut(key, ":")
		cause := Cause{Trigger: TriggerScan, Detail: v}
		var set map[inventory.Key]struct{}
		switch kind {
		case "m":
			cause.Trigger = TriggerMalicious
			set = m.byDigest[v]
		case "d":
			set = m.byDigest[v]
		case "r":
			set = m.byRef[v]
		}
		for k := range set {
			hits, causes = append(hits, k), append(causes, cause)
		}
	}
	m.mu.Unlock()
	// Digests the kubelet pulled but no decision named (facts without a
	// digest): the inventory knows them.
	for _, key := range keys {
		if kind, v, _ := strings.Cut(key, ":"); kind == "m" || kind == "d" {
			trigger := TriggerScan
			if kind == "m" {
				trigger = TriggerMalicious
			}
			for _, k := range m.inv.ByDigest(v) {
				hits, causes = append(hits, k), append(causes, Cause{Trigger: trigger, Detail: v})
			}
		}
	}
	for i, k := range hits {
		m.mark(k, causes[i])
	}
}

func (m *Monitor) mark(k inventory.Key, c Cause) {
	if m.o.exempt[k.Namespace] {
		return
	}
	m.mu.Lock()
	if _, ok := m.pending[k]; !ok {
		m.pending[k] = c
	}
	m.mu.Unlock()
	m.wake()
}

func (m *Monitor) markAll(c Cause) {
	m.mu.Lock()
	if m.all == nil {
		m.all = &c
	}
	m.mu.Unlock()
	m.wake()
}

func (m *Monitor) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Synced reports whether every workload was decided at least once.
func (m *Monitor) Synced() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.synced
}

// Run decides every workload, then what changes, until ctx ends. The
// inventory must be synced; Run waits for the first engine.
func (m *Monitor) Run(ctx context.Context) error {
	poll := time.NewTicker(m.o.enginePoll)
	defer poll.Stop()
	for m.engines.Engine() == nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
		}
	}
	m.engine = m.engines.Engine()
	m.markAll(Cause{Trigger: TriggerStart})
	var resync <-chan time.Time
	if m.o.resync > 0 {
		t := time.NewTicker(m.o.resync)
		defer t.Stop()
		resync = t.C
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m.resetTimer(timer)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.kick:
		case <-poll.C:
		case <-resync:
			m.markAll(Cause{Trigger: TriggerResync})
		case <-timer.C:
		}
		m.checkEngine()
		m.checkLeader(ctx)
		m.dueExpiries()
		if !m.hasWork() {
			continue
		}
		if m.o.debounce > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(m.o.debounce):
			}
		}
		m.checkEngine()
		m.pass(ctx)
	}
}

func (m *Monitor) hasWork() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.all != nil || len(m.pending) > 0
}

func (m *Monitor) resetTimer(t *time.Timer) {
	m.mu.Lock()
	next := time.Hour
	if len(m.expiry) > 0 {
		next = max(m.expiry[0].due.Sub(m.o.now()), time.Millisecond)
	}
	m.mu.Unlock()
	t.Reset(next)
}

// checkEngine notices a new engine (policies reloaded): every workload is
// decided again, or, when only attestors changed, those in namespaces that
// require one of them.
func (m *Monitor) checkEngine() {
	e := m.engines.Engine()
	if e == nil || e == m.engine {
		return
	}
	old := m.engine
	m.engine = e
	d := diffSnapshots(old.Snapshot(), e.Snapshot())
	if len(d.attestors) == 0 || d.others {
		m.markAll(Cause{Trigger: TriggerPolicy, Detail: d.String()})
		return
	}
	cause := Cause{Trigger: TriggerAttestor, Detail: d.String()}
	m.mu.Lock()
	for k, s := range m.states {
		if requires(old, k.Namespace, s, d.attestors) || requires(e, k.Namespace, s, d.attestors) {
			if _, ok := m.pending[k]; !ok {
				m.pending[k] = cause
			}
		}
	}
	m.mu.Unlock()
	m.wake()
}

func (m *Monitor) dueExpiries() {
	m.mu.Lock()
	now := m.o.now()
	n := 0
	for len(m.expiry) > 0 && !m.expiry[0].due.After(now) {
		x := heap.Pop(&m.expiry).(expiryItem)
		if s, ok := m.states[x.key]; ok && s.expires.Equal(x.due) {
			if _, ok := m.pending[x.key]; !ok {
				m.pending[x.key] = Cause{Trigger: TriggerScanAge, Detail: "a scan is older than --max-scan-age"}
			}
			n++
		}
	}
	m.mu.Unlock()
	if n > 0 {
		m.wake()
	}
}

func (m *Monitor) isLeader() bool { return m.o.leader() }

// checkLeader reconciles the sinks when this replica became the leader
// (once it has decided everything: a pass before that reports every
// workload anyway).
func (m *Monitor) checkLeader(ctx context.Context) {
	now := m.isLeader()
	if now == m.leader || (now && !m.Synced()) {
		return
	}
	m.leader = now
	if now {
		states := m.States()
		for _, s := range m.o.sinks {
			if r, ok := s.(Reconciler); ok {
				r.Reconcile(ctx, states)
			}
		}
	}
	m.updateGauge()
}

func (m *Monitor) updateGauge() {
	counts := map[[2]string]int{}
	leader := m.isLeader()
	m.mu.Lock()
	n := len(m.states)
	if leader {
		for k, s := range m.states {
			if s.Violating() {
				counts[[2]string{k.Namespace, s.Action}]++
			}
		}
	}
	m.mu.Unlock()
	m.metrics.setViolating(counts, n)
}
