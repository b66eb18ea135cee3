package audit

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Dimensions a StatsQuery splits its series by.
const (
	ByAction    = "action"
	ByCluster   = "cluster"
	ByNamespace = "namespace"
	ByStrategy  = "strategy"
	ByImage     = "image"
)

// StatsDimensions lists every dimension a StatsQuery may name.
var StatsDimensions = []string{ByAction, ByCluster, ByNamespace, ByStrategy, ByImage}

// Bounds of a StatsQuery: counts are kept per hour, a window holds at most
// MaxStatsBuckets buckets and a series or top list at most MaxStatsTop
// entries, so an answer's size does not grow with the store.
const (
	StatsResolution = time.Hour
	MaxStatsBuckets = 24 * 62
	DefaultStatsTop = 10
	MaxStatsTop     = 50
	// OtherSeries sums the values past the top ones.
	OtherSeries = "(other)"
)

// StatsQuery asks for admission event counts over time: a series per
// value of By (the Top largest, the rest summed as OtherSeries), the
// totals per action, and the most blocked images and namespaces.
type StatsQuery struct {
	Since, Until time.Time     // [Since, Until), rounded out to whole hours
	Step         time.Duration // bucket width, whole hours; 0: one hour
	By           string        // a StatsDimensions entry; empty: action
	// Action narrows the series of a By other than action to the events
	// with that action; empty counts every action.
	Action string
	Top    int // 0: DefaultStatsTop
}

// Stats are the counts a StatsQuery asked for. An event with several
// actions (one image blocked, another alerted) counts once for each.
type Stats struct {
	Start       time.Time        `json:"start"`
	StepSeconds int64            `json:"stepSeconds"`
	Buckets     int              `json:"buckets"`
	By          string           `json:"by"`
	Action      string           `json:"action,omitempty"`
	Series      []Series         `json:"series"`
	Totals      map[string]int64 `json:"totals"`
	// TopBlockedImages are repositories as written (without tag or
	// digest), TopBlockedNamespaces namespaces, by blocked events.
	TopBlockedImages     []Count `json:"topBlockedImages"`
	TopBlockedNamespaces []Count `json:"topBlockedNamespaces"`
}

// Series is one value's counts, one per bucket.
type Series struct {
	Name   string  `json:"name"`
	Total  int64   `json:"total"`
	Counts []int64 `json:"counts"`
}

// Count is one value and its count.
type Count struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// Aggregator answers stats queries: the bbolt Store from counters it keeps
// per hour as it writes, PostgreSQL (package pgstore) by grouping.
type Aggregator interface {
	Stats(q StatsQuery) (*Stats, error)
}

var _ Aggregator = (*Store)(nil)

// Cell is one stored count: events of one hour with Action whose Dim is
// Value (empty for ByAction).
type Cell struct {
	Hour   time.Time
	Dim    string
	Value  string
	Action string
	Count  int64
}

// Normalize checks q and fills its defaults: Until now (rounded up to the
// hour) when zero, Since a day before Until when zero.
func (q *StatsQuery) Normalize(now time.Time) error {
	q.By = cmp.Or(q.By, ByAction)
	if !slices.Contains(StatsDimensions, q.By) {
		return &FilterError{"by", q.By, "one of " + strings.Join(StatsDimensions, ", ")}
	}
	if q.Action != "" && !slices.Contains(Actions, q.Action) {
		return &FilterError{"action", q.Action, "one of " + strings.Join(Actions, ", ")}
	}
	if q.Top == 0 {
		q.Top = DefaultStatsTop
	}
	if q.Top < 1 || q.Top > MaxStatsTop {
		return &FilterError{"top", fmt.Sprint(q.Top), fmt.Sprintf("a whole number from 1 to %d", MaxStatsTop)}
	}
	q.Step = cmp.Or(q.Step, StatsResolution)
	if q.Step < 0 || q.Step%StatsResolution != 0 {
		return &FilterError{"step", q.Step.String(), "a whole number of hours (1h, 24h)"}
	}
	if q.Until.IsZero() {
		q.Until = now
	}
	if u := q.Until.UTC(); u.Truncate(StatsResolution).Before(u) {
		q.Until = u.Truncate(StatsResolution).Add(StatsResolution)
	} else {
		q.Until = u
	}
	if q.Since.IsZero() {
		q.Since = q.Until.Add(-24 * time.Hour)
	}
	q.Since = q.Since.UTC().Truncate(q.Step)
	if !q.Since.Before(q.Until) {
		return &FilterError{"since", q.Since.Format(time.RFC3339), "a time before until (" + q.Until.Format(time.RFC3339) + ")"}
	}
	if n := q.buckets(); n > MaxStatsBuckets {
		return &FilterError{"since", q.Since.Format(time.RFC3339),
			fmt.Sprintf("a window of at most %d buckets of %v (this one has %d: widen step or shorten the window)", MaxStatsBuckets, q.Step, n)}
	}
	return nil
}

func (q *StatsQuery) buckets() int {
	return int((q.Until.Sub(q.Since) + q.Step - 1) / q.Step)
}

// Dims are the dimensions whose cells the answer needs.
func (q *StatsQuery) Dims() []string {
	dims := []string{ByAction, ByNamespace, ByImage}
	if !slices.Contains(dims, q.By) {
		dims = append(dims, q.By)
	}
	return dims
}

// BuildStats assembles the answer to a normalized q from the cells of its
// window (cells of other dimensions or outside it are ignored).
func BuildStats(q StatsQuery, cells []Cell) *Stats {
	b := NewStatsBuilder(q)
	for _, c := range cells {
		b.Add(c)
	}
	return b.Stats()
}

// StatsBuilder sums cells into the answer to a normalized query as they
// are read, so that memory grows with the answer, not the cells.
type StatsBuilder struct {
	q                     StatsQuery
	n                     int
	totals                map[string]int64
	series                map[string][]int64
	blockedImg, blockedNs map[string]int64
}

// NewStatsBuilder starts the answer to q (normalized).
func NewStatsBuilder(q StatsQuery) *StatsBuilder {
	return &StatsBuilder{q: q, n: q.buckets(), totals: map[string]int64{}, series: map[string][]int64{},
		blockedImg: map[string]int64{}, blockedNs: map[string]int64{}}
}

// Add counts one cell.
func (b *StatsBuilder) Add(c Cell) {
	q := &b.q
	if c.Hour.Before(q.Since) || !c.Hour.Before(q.Until) {
		return
	}
	if c.Dim == ByAction {
		b.totals[c.Action] += c.Count
	}
	if c.Action == ActionBlock {
		switch c.Dim {
		case ByImage:
			b.blockedImg[c.Value] += c.Count
		case ByNamespace:
			b.blockedNs[c.Value] += c.Count
		}
	}
	if c.Dim != q.By || (q.By != ByAction && q.Action != "" && c.Action != q.Action) {
		return
	}
	name := c.Value
	if q.By == ByAction {
		name = c.Action
	}
	s := b.series[name]
	if s == nil {
		s = make([]int64, b.n)
		b.series[name] = s
	}
	s[int(c.Hour.Sub(q.Since)/q.Step)] += c.Count
}

// Stats is the answer: the Top series by total (the rest summed as
// OtherSeries) and the top lists.
func (b *StatsBuilder) Stats() *Stats {
	q, n := b.q, b.n
	st := &Stats{Start: q.Since, StepSeconds: int64(q.Step / time.Second), Buckets: n, By: q.By, Action: q.Action,
		Series: []Series{}, Totals: b.totals}
	for name, counts := range b.series {
		var total int64
		for _, v := range counts {
			total += v
		}
		st.Series = append(st.Series, Series{Name: name, Total: total, Counts: counts})
	}
	slices.SortFunc(st.Series, func(a, b Series) int { return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.Name, b.Name)) })
	if len(st.Series) > q.Top {
		other := Series{Name: OtherSeries, Counts: make([]int64, n)}
		for _, s := range st.Series[q.Top:] {
			other.Total += s.Total
			for i, v := range s.Counts {
				other.Counts[i] += v
			}
		}
		st.Series = append(st.Series[:q.Top], other)
	}
	st.TopBlockedImages, st.TopBlockedNamespaces = topN(b.blockedImg, q.Top), topN(b.blockedNs, q.Top)
	return st
}

func topN(m map[string]int64, n int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	slices.SortFunc(out, func(a, b Count) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name)) })
	return out[:min(n, len(out))]
}

// eachStatCell calls fn once for each distinct counter an admission event
// adds to: per action, and per action with its cluster, namespace, each
// strategy that hit an image (with that image's action) and each image's
// repository as written.
func eachStatCell(ev *Event, fn func(Cell)) {
	// The overview counts admission decisions; a running workload judged
	// again is not another pod admitted or refused (the runtime views and
	// the workloads API report those).
	if ev.IsAPI() || ev.Type == TypeRuntime {
		return
	}
	hour := ev.Time.UTC().Truncate(StatsResolution)
	var seenBuf [16]Cell
	seen := seenBuf[:0]
	add := func(dim, value, action string) {
		c := Cell{Hour: hour, Dim: dim, Value: value, Action: action, Count: 1}
		if slices.Contains(seen, c) {
			return
		}
		seen = append(seen, c)
		fn(c)
	}
	for _, a := range ev.Actions {
		add(ByAction, "", a)
		add(ByCluster, ev.ClusterID, a)
		add(ByNamespace, ev.Namespace, a)
	}
	for _, img := range ev.Images {
		if img.Action == "" || img.Action == "pass" {
			continue
		}
		add(ByImage, writtenRepository(img.Image), img.Action)
		for _, s := range img.Strategies {
			add(ByStrategy, cmp.Or(s.Name, strconv.FormatInt(s.ID, 10)), img.Action)
		}
	}
}

// writtenRepository is the repository as written: without digest or tag.
func writtenRepository(ref string) string {
	if at := strings.IndexByte(ref, '@'); at >= 0 {
		ref = ref[:at]
	}
	if colon := strings.LastIndexByte(ref, ':'); colon > strings.LastIndexByte(ref, '/') {
		ref = ref[:colon]
	}
	return ref
}
