package compliance

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/imagegate/imagegate/inventory"
	"github.com/imagegate/imagegate/workload"
)

// pass decides what is pending and reports the changes.
func (m *Monitor) pass(ctx context.Context) {
	start := m.o.now()
	m.mu.Lock()
	work := m.pending
	m.pending = map[inventory.Key]Cause{}
	all := m.all
	m.all = nil
	m.mu.Unlock()
	if all != nil {
		for _, k := range m.inv.Keys() {
			if _, ok := work[k]; !ok && !m.o.exempt[k.Namespace] {
				work[k] = *all
			}
		}
		m.mu.Lock()
		for k := range m.states { // gone since
			if _, ok := work[k]; !ok {
				work[k] = *all
			}
		}
		m.mu.Unlock()
	}
	keys := make([]inventory.Key, 0, len(work))
	for k := range work {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	results := m.decideAll(ctx, keys, work)
	changes := m.apply(keys, work, results)
	trigger := TriggerPod
	if all != nil {
		trigger = all.Trigger
	} else if len(keys) > 0 {
		trigger = work[keys[0]].Trigger
	}
	m.metrics.observe(trigger, len(keys), m.o.now().Sub(start))
	if all != nil && all.Trigger == TriggerStart {
		m.mu.Lock()
		m.synced = true
		m.mu.Unlock()
	}
	if m.isLeader() && len(changes) > 0 {
		for _, s := range m.o.sinks {
			s.Changed(ctx, changes)
		}
	}
	m.updateGauge()
}

// decideAll decides keys on the configured number of workers.
func (m *Monitor) decideAll(ctx context.Context, keys []inventory.Key, work map[inventory.Key]Cause) []*State {
	results := make([]*State, len(keys))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(m.o.concurrency, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := &strategyNames{}
			for i := range next {
				results[i] = m.decide(ctx, keys[i], work[keys[i]], names)
			}
		}()
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// decide decides one workload: each distinct pod spec once.
func (m *Monitor) decide(ctx context.Context, k inventory.Key, cause Cause, names *strategyNames) *State {
	w, ok := m.inv.Workload(k)
	if !ok {
		return nil
	}
	now := m.o.now()
	s := &State{Namespace: k.Namespace, Kind: k.Kind, Name: k.Name, Pods: len(w.Pods), Action: ActionPass, Allowed: true,
		Images: []Image{}, DecidedAt: now, Cause: cause, key: k}
	seen := map[string]bool{}
	for _, p := range w.Pods {
		s.pods = append(s.pods, p.Name)
		obj := workload.FromPod(podOf(p))
		spec := specKey(obj)
		if seen[spec] {
			continue
		}
		seen[spec] = true
		dctx, cancel := context.WithTimeout(ctx, m.o.timeout)
		out, err := m.dec.DecideOutcome(dctx, obj)
		cancel()
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil
		}
		refs := make([]string, 0, len(obj.Images))
		for _, img := range obj.Images {
			if img.Canonical != "" {
				refs = append(refs, img.Canonical)
			}
			if img.Digest != "" {
				s.digests = appendNew(s.digests, img.Digest)
			}
		}
		s.merge(out, err, names, m.o.maxScanAge, refs)
	}
	for _, st := range w.Pods[0].Status.ContainerStatuses {
		s.digests = appendNew(s.digests, st.ImageID)
	}
	s.finish()
	return s
}

// podOf is a trimmed pod as workload.FromPod takes it.
func podOf(p *corev1.Pod) workload.Pod {
	conv := func(cs []corev1.Container) []workload.PodContainer {
		out := make([]workload.PodContainer, len(cs))
		for i, c := range cs {
			out[i] = workload.PodContainer{Name: c.Name, Image: c.Image}
		}
		return out
	}
	wp := workload.Pod{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, ServiceAccount: p.Spec.ServiceAccountName,
		Containers: conv(p.Spec.Containers), InitContainers: conv(p.Spec.InitContainers)}
	for _, e := range p.Spec.EphemeralContainers {
		wp.EphemeralContainers = append(wp.EphemeralContainers, workload.PodContainer{Name: e.Name, Image: e.Image})
	}
	for _, r := range p.Spec.ImagePullSecrets {
		wp.PullSecrets = append(wp.PullSecrets, r.Name)
	}
	return wp
}

// specKey is what makes two pods' decisions the same.
func specKey(o *workload.Object) string {
	var b strings.Builder
	b.WriteString(o.ServiceAccount + "\x00" + strings.Join(o.PullSecrets, ",") + "\x00")
	labels := make([]string, 0, len(o.Labels))
	for k, v := range o.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	b.WriteString(strings.Join(labels, ",") + "\x00")
	for _, img := range o.Images {
		b.WriteString(img.Ref + "\x00")
	}
	return b.String()
}

// apply stores the new states and returns the changes.
func (m *Monitor) apply(keys []inventory.Key, work map[inventory.Key]Cause, results []*State) []Change {
	m.mu.Lock()
	defer m.mu.Unlock()
	var changes []Change
	for i, k := range keys {
		old, s := m.states[k], results[i]
		if s == nil && old == nil {
			continue
		}
		if s != nil && old == nil && len(m.states) >= m.o.maxWorkloads {
			m.metrics.overflow.Inc()
			continue
		}
		if old != nil {
			m.unindex(old)
		}
		if s == nil {
			delete(m.states, k)
			changes = append(changes, Change{Key: k, Cause: work[k], Old: old})
			continue
		}
		switch {
		case old == nil:
			if s.Violating() {
				s.ViolatingSince = s.DecidedAt
			}
		case s.Violating() && old.Violating():
			s.ViolatingSince = old.ViolatingSince
		case s.Violating():
			s.ViolatingSince = s.DecidedAt
		case old.Violating():
			s.ResolvedAt = s.DecidedAt
		default:
			s.ResolvedAt = old.ResolvedAt
		}
		m.states[k] = s
		m.index(s)
		if old == nil || old.fingerprint != s.fingerprint {
			changes = append(changes, Change{Key: k, Cause: work[k], Old: old, New: s})
		}
	}
	return changes
}
