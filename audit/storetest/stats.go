package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
)

// StatsSubject is a store that answers stats queries too.
type StatsSubject interface {
	Subject
	audit.Aggregator
}

// statsEvent is Synthetic(i) with a strategy hit on blocked and alerted
// images, so that the strategy dimension has something to count.
func statsEvent(i int) *audit.Event {
	ev := Synthetic(i)
	for j := range ev.Images {
		if a := ev.Images[j].Action; a == audit.ActionBlock || a == audit.ActionAlert {
			ev.Images[j].Strategies = []audit.StrategyHit{{ID: int64(1 + i%2), Name: fmt.Sprint("s", 1+i%2), Action: a}}
		}
	}
	return ev
}

// RunStats checks a store's stats against counts made here from the
// events written: every dimension, the window bounds, the top lists.
func RunStats(t *testing.T, open func(t *testing.T) StatsSubject) {
	const n = 600 // ten hours, crossing midnight
	s := open(t)
	evs := make([]*audit.Event, 0, n)
	for i := range n {
		evs = append(evs, statsEvent(i))
	}
	if err := s.Write(evs); err != nil {
		t.Fatal(err)
	}
	since := T0.Truncate(time.Hour)
	until := since.Add(11 * time.Hour)
	for _, by := range audit.StatsDimensions {
		for _, action := range []string{"", audit.ActionBlock} {
			t.Run(by+"/"+action, func(t *testing.T) {
				q := audit.StatsQuery{Since: since, Until: until, By: by, Action: action, Top: audit.MaxStatsTop}
				got, err := s.Stats(q)
				if err != nil {
					t.Fatal(err)
				}
				want := bruteStats(evs, since, by, action)
				if got.Buckets != 11 || !got.Start.Equal(since) || got.StepSeconds != 3600 {
					t.Fatalf("window: start %v step %d buckets %d", got.Start, got.StepSeconds, got.Buckets)
				}
				gotM := map[string]string{}
				for _, se := range got.Series {
					gotM[se.Name] = fmt.Sprint(se.Counts)
				}
				if fmt.Sprint(gotM) != fmt.Sprint(want) {
					t.Fatalf("series by %s action %q:\n got %v\nwant %v", by, action, gotM, want)
				}
				if got.Totals[audit.ActionBlock] != countAction(evs, audit.ActionBlock) || got.Totals[audit.ActionError] != countAction(evs, audit.ActionError) {
					t.Fatalf("totals %v", got.Totals)
				}
				if len(got.TopBlockedNamespaces) != 3 || got.TopBlockedNamespaces[0].Count < got.TopBlockedNamespaces[2].Count {
					t.Fatalf("top blocked namespaces %v", got.TopBlockedNamespaces)
				}
				var blocked int64
				for _, c := range got.TopBlockedImages {
					blocked += c.Count
				}
				if len(got.TopBlockedImages) != 4 || blocked != countAction(evs, audit.ActionBlock) || got.TopBlockedImages[0].Count < got.TopBlockedImages[3].Count ||
					!strings.HasPrefix(got.TopBlockedImages[0].Name, "registry.example.com/team") || strings.Contains(got.TopBlockedImages[0].Name, ":") {
					t.Fatalf("top blocked images %v", got.TopBlockedImages)
				}
			})
		}
	}
	t.Run("window and top bound the answer", func(t *testing.T) {
		got, err := s.Stats(audit.StatsQuery{Since: since.Add(2 * time.Hour), Until: since.Add(3 * time.Hour), By: audit.ByNamespace, Top: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got.Buckets != 1 || len(got.Series) != 2 || got.Series[1].Name != audit.OtherSeries || got.Series[0].Total+got.Series[1].Total != int64(countAdmissions(2)) {
			t.Fatalf("one hour, top 1: %+v", got)
		}
	})
	t.Run("bad queries", func(t *testing.T) {
		for _, q := range []audit.StatsQuery{
			{By: "user"}, {Action: "pass"}, {Top: audit.MaxStatsTop + 1}, {Step: 90 * time.Minute},
			{Since: since.AddDate(-1, 0, 0), Until: since},
			{Since: until, Until: since},
		} {
			if _, err := s.Stats(q); err == nil {
				t.Errorf("%+v: no error", q)
			}
		}
	})
}

// countAdmissions counts the admission events of hour h of the window:
// the stats leave API calls and runtime re-judgements out.
func countAdmissions(h int) int {
	n := 0
	for i := range 600 {
		ev := Synthetic(i)
		if !ev.IsAPI() && ev.Type != audit.TypeRuntime && ev.Time.Truncate(time.Hour).Equal(T0.Truncate(time.Hour).Add(time.Duration(h)*time.Hour)) {
			n++
		}
	}
	return n
}

func countAction(evs []*audit.Event, action string) int64 {
	var n int64
	for _, ev := range evs {
		if !ev.IsAPI() && ev.Type != audit.TypeRuntime && ev.Actions[0] == action {
			n++
		}
	}
	return n
}

func bruteStats(evs []*audit.Event, since time.Time, by, action string) map[string]string {
	counts := map[string][]int64{}
	bump := func(name string, at time.Time) {
		if counts[name] == nil {
			counts[name] = make([]int64, 11)
		}
		counts[name][int(at.Sub(since)/time.Hour)]++
	}
	for _, ev := range evs {
		if ev.IsAPI() || ev.Type == audit.TypeRuntime { // admissions only
			continue
		}
		for _, a := range ev.Actions {
			if by != audit.ByAction && action != "" && a != action {
				continue
			}
			switch by {
			case audit.ByAction:
				bump(a, ev.Time)
			case audit.ByCluster:
				bump(ev.ClusterID, ev.Time)
			case audit.ByNamespace:
				bump(ev.Namespace, ev.Time)
			case audit.ByImage:
				bump(ev.Images[0].Image[:strings.LastIndexByte(ev.Images[0].Image, ':')], ev.Time)
			case audit.ByStrategy:
				for _, s := range ev.Images[0].Strategies {
					bump(s.Name, ev.Time)
				}
			}
		}
	}
	out := map[string]string{}
	for k, v := range counts {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// RunGet checks that audit.Get finds each event by id through the store's
// Query, and nothing for an id between two events.
func RunGet(t *testing.T, s Subject) {
	Write(t, s, 50)
	for _, i := range []int{0, 1, 7, 49} {
		want := Synthetic(i)
		got, err := audit.Get(s, want.ID)
		if err != nil || got.ID != want.ID || got.UID != want.UID {
			t.Fatalf("Get(%s): %+v, %v", want.ID, got, err)
		}
	}
	between := Synthetic(3).ID[:31] + "f"
	if _, err := audit.Get(s, between); !errors.Is(err, audit.ErrNoEvent) {
		t.Fatalf("Get of an id no event has: %v, want ErrNoEvent", err)
	}
	if _, err := audit.Get(s, "zz"); err == nil {
		t.Fatal("Get of a malformed id: no error")
	}
}
