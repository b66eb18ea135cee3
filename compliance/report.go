package compliance

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/audit"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// ReportName is the PolicyReport the runtime monitor keeps per namespace
// (beside the admission report, audit.ReportName).
const ReportName = "imagegate-runtime"

// DefaultReportResults bounds one report's results (fail first): a report
// is one object, within etcd's object size limit.
const DefaultReportResults = 1000

// StateSource answers a namespace's current states; *Monitor is one.
type StateSource interface {
	InNamespace(ns string) []*State
}

var _ StateSource = (*Monitor)(nil)

// ReportWriter keeps one PolicyReport per namespace with the current state
// of its workloads: a result per strategy or attestor each violating image
// breaks (category runtime), and a pass result for each workload that broke
// a policy and is compliant again (resolved). Namespaces are written in the
// background, each at most once per interval however often it changes.
type ReportWriter struct {
	client     dynamic.Interface
	states     StateSource
	log        *slog.Logger
	maxResults int
	interval   time.Duration

	mu    sync.Mutex
	dirty map[string]bool
	kick  chan struct{}
}

var (
	_ Sink       = (*ReportWriter)(nil)
	_ Reconciler = (*ReportWriter)(nil)
)

// NewReportWriter returns a writer; Run writes.
func NewReportWriter(client dynamic.Interface, states StateSource, log *slog.Logger) *ReportWriter {
	return &ReportWriter{client: client, states: states, log: log, maxResults: DefaultReportResults, interval: 200 * time.Millisecond,
		dirty: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// Changed marks the namespaces of changes for writing.
func (w *ReportWriter) Changed(_ context.Context, changes []Change) {
	w.mu.Lock()
	for _, c := range changes {
		w.dirty[c.Key.Namespace] = true
	}
	w.mu.Unlock()
	w.wake()
}

// Reconcile rewrites the report of every namespace with a workload.
func (w *ReportWriter) Reconcile(_ context.Context, states []*State) {
	w.mu.Lock()
	for _, s := range states {
		w.dirty[s.Namespace] = true
	}
	w.mu.Unlock()
	w.wake()
}

func (w *ReportWriter) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run writes dirty namespaces until ctx ends.
func (w *ReportWriter) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.interval):
		}
		w.mu.Lock()
		dirty := w.dirty
		w.dirty = map[string]bool{}
		w.mu.Unlock()
		nss := make([]string, 0, len(dirty))
		for ns := range dirty {
			nss = append(nss, ns)
		}
		sort.Strings(nss)
		for _, ns := range nss {
			if err := w.write(ctx, ns); err != nil && ctx.Err() == nil {
				w.log.Warn("runtime PolicyReport not written; retried on the next change", "namespace", ns, "error", err.Error())
			}
		}
	}
}

func (w *ReportWriter) write(ctx context.Context, ns string) error {
	results, omitted := reportResults(w.states.InNamespace(ns), w.maxResults)
	reports := w.client.Resource(audit.PolicyReportGVR).Namespace(ns)
	var err error
	for range 3 { // conflicting writes: read again
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = w.writeOnce(wctx, reports, ns, results, omitted)
		cancel()
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			break
		}
	}
	return err
}

func (w *ReportWriter) writeOnce(ctx context.Context, reports dynamic.ResourceInterface, ns string, results []any, omitted int) error {
	cur, err := reports.Get(ctx, ReportName, metav1.GetOptions{})
	create := apierrors.IsNotFound(err)
	if create {
		if len(results) == 0 {
			return nil
		}
		cur = &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
			"metadata": map[string]any{"name": ReportName, "namespace": ns,
				"labels": map[string]any{"app.kubernetes.io/managed-by": "imagegate"}},
		}}
	} else if err != nil {
		return err
	}
	cur.Object["results"] = results
	cur.Object["summary"] = audit.PolicyReportSummary(results)
	ann := cur.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann["imagegate.dev/results-omitted"] = strconv.Itoa(omitted)
	cur.SetAnnotations(ann)
	if create {
		_, err = reports.Create(ctx, cur, metav1.CreateOptions{})
	} else {
		_, err = reports.Update(ctx, cur, metav1.UpdateOptions{})
	}
	return err
}

var resultOrder = map[string]int{"fail": 0, "error": 1, "warn": 2, "skip": 3, "pass": 4}

// reportResults are the results of a namespace's states, worst first,
// at most max of them, and how many were left out.
func reportResults(states []*State, max int) ([]any, int) {
	var out []map[string]any
	for _, s := range states {
		out = append(out, stateResults(s)...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		return resultOrder[out[i]["result"].(string)] < resultOrder[out[j]["result"].(string)]
	})
	omitted := 0
	if len(out) > max {
		omitted, out = len(out)-max, out[:max]
	}
	res := make([]any, len(out))
	for i, r := range out {
		res[i] = r
	}
	return res, omitted
}

func stateResults(s *State) []map[string]any {
	resource := map[string]any{"apiVersion": apiVersionOf(s.Kind), "kind": s.Kind, "name": s.Name, "namespace": s.Namespace}
	ts := map[string]any{"seconds": s.DecidedAt.Unix(), "nanos": int64(s.DecidedAt.Nanosecond())}
	var out []map[string]any
	add := func(policy, rule, result, severity, msg string, img *Image) {
		props := map[string]any{"action": s.Action, "pods": strconv.Itoa(s.Pods), "trigger": s.Cause.Trigger}
		if !s.ViolatingSince.IsZero() {
			props["violatingSince"] = s.ViolatingSince.UTC().Format(time.RFC3339)
		}
		if !s.ResolvedAt.IsZero() && !s.Violating() {
			props["resolved"] = "true"
			props["resolvedAt"] = s.ResolvedAt.UTC().Format(time.RFC3339)
		}
		if img != nil {
			props["image"] = img.Image
			if img.Digest != "" {
				props["digest"] = img.Digest
			}
		}
		out = append(out, map[string]any{"source": "imagegate", "policy": policy, "rule": rule, "category": "runtime",
			"result": result, "severity": severity, "message": msg, "timestamp": ts, "resources": []any{resource}, "properties": props})
	}
	switch {
	case s.Error != "":
		add("imagegate", "decision", "error", "high", s.Error, nil)
		return out
	case !s.Violating():
		if !s.ResolvedAt.IsZero() {
			add("imagegate", "resolved", "pass", "info", fmt.Sprintf("%s %s/%s is compliant again", s.Kind, s.Namespace, s.Name), nil)
		}
		return out
	}
	for i := range s.Images {
		img := &s.Images[i]
		if img.Action == ActionPass || img.Action == ActionAllow {
			continue
		}
		for _, m := range img.MissingAttestors {
			add("attestor/"+m.Attestor, "signature", "fail", "high",
				fmt.Sprintf("image %q is not signed by attestor %q: %s", img.Image, m.Attestor, m.Reason), img)
		}
		for _, st := range img.Strategies {
			result, severity := "warn", "medium"
			if st.Action == ActionBlock {
				result, severity = "fail", "high"
			} else if st.Action == ActionAllow {
				continue
			}
			add(fmt.Sprintf("strategy/%d", st.ID), st.Name, result, severity, reasonFor(img, st.ID), img)
		}
		if len(img.Strategies) == 0 && len(img.MissingAttestors) == 0 {
			add("imagegate", img.Action, "fail", "high", firstOr(img.Reasons, "image "+img.Image+": "+img.Action), img)
		}
	}
	return out
}

func reasonFor(img *Image, id int64) string {
	needle := fmt.Sprintf("strategy %d ", id)
	for _, r := range img.Reasons {
		if strings.Contains(r, needle) {
			return r
		}
	}
	return firstOr(img.Reasons, "image "+img.Image+": "+img.Action)
}

func firstOr(xs []string, def string) string {
	if len(xs) > 0 {
		return xs[0]
	}
	return def
}

func apiVersionOf(kind string) string {
	switch kind {
	case "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet":
		return "apps/v1"
	case "Job", "CronJob":
		return "batch/v1"
	}
	return "v1"
}
