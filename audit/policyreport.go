package audit

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// PolicyReportGVR is the resource the report sink writes: the Kubernetes
// policy working group's PolicyReport, as Kyverno and Policy Reporter read it.
var PolicyReportGVR = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}

// ReportName is the PolicyReport imagegate keeps in each namespace.
const ReportName = "imagegate"

// DefaultReportResults bounds the results one report keeps (newest first):
// a report is one object, within etcd's object size limit.
const DefaultReportResults = 200

// ReportSink keeps one PolicyReport per namespace with the namespace's most
// recent audit events as results: block and unsigned fail, alert warns,
// allow (an exception) skips, and undecided requests are errors.
type ReportSink struct {
	client     dynamic.Interface
	maxResults int
}

var _ Sink = (*ReportSink)(nil)

// NewReportSink returns a sink writing PolicyReports with client.
func NewReportSink(client dynamic.Interface) *ReportSink {
	return &ReportSink{client: client, maxResults: DefaultReportResults}
}

// Name is the sink's metric label.
func (s *ReportSink) Name() string { return "policyreport" }

// Write adds the batch's results to each namespace's report, one update per
// namespace; it returns the last error and goes on with other namespaces.
func (s *ReportSink) Write(events []*Event) error {
	byNs := map[string][]any{}
	var order []string
	for _, ev := range events {
		if ev.IsAPI() || ev.Type == TypeRuntime || ev.Namespace == "" {
			continue // about admissions: not management API calls; runtime findings have their own report
		}
		if _, ok := byNs[ev.Namespace]; !ok {
			order = append(order, ev.Namespace)
		}
		byNs[ev.Namespace] = append(byNs[ev.Namespace], results(ev)...)
	}
	var last error
	for _, ns := range order {
		if err := s.update(ns, byNs[ns]); err != nil {
			last = fmt.Errorf("policy report %s/%s: %w", ns, ReportName, err)
		}
	}
	return last
}

func (s *ReportSink) update(ns string, fresh []any) error {
	reports := s.client.Resource(PolicyReportGVR).Namespace(ns)
	var err error
	for range 3 { // retry on conflicting writes
		ctx, cancel := context.WithTimeout(context.Background(), kubeWriteTimeout)
		err = s.updateOnce(ctx, reports, ns, fresh)
		cancel()
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return err
}

func (s *ReportSink) updateOnce(ctx context.Context, reports dynamic.ResourceInterface, ns string, fresh []any) error {
	cur, err := reports.Get(ctx, ReportName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cur = &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
			"metadata": map[string]any{"name": ReportName, "namespace": ns,
				"labels": map[string]any{"app.kubernetes.io/managed-by": "imagegate"}},
		}}
	} else if err != nil {
		return err
	}
	old, _, _ := unstructured.NestedSlice(cur.Object, "results")
	// Results are kept newest first; the batch is oldest first.
	all := make([]any, 0, len(fresh)+len(old))
	for i := len(fresh) - 1; i >= 0; i-- {
		all = append(all, fresh[i])
	}
	all = append(all, old...)
	if len(all) > s.maxResults {
		all = all[:s.maxResults]
	}
	cur.Object["results"] = all
	cur.Object["summary"] = PolicyReportSummary(all)
	if cur.GetResourceVersion() == "" {
		_, err = reports.Create(ctx, cur, metav1.CreateOptions{})
	} else {
		_, err = reports.Update(ctx, cur, metav1.UpdateOptions{})
	}
	return err
}

// results are an event's PolicyReport results: one per strategy or missing
// attestor of each image that did not plainly pass (the policy is the
// strategy or the attestor, the rule its id or the image gate).
func results(ev *Event) []any {
	resource := map[string]any{"apiVersion": apiVersionOf(ev.Kind), "kind": ev.Kind, "name": ev.Name, "namespace": ev.Namespace}
	ts := map[string]any{"seconds": ev.Time.Unix(), "nanos": int64(ev.Time.Nanosecond())}
	var out []any
	add := func(policy, rule, category, result, severity, msg string, img *ImageEvent) {
		props := map[string]any{"eventId": ev.ID, "uid": ev.UID, "decision": ev.Decision, "user": ev.User.Username,
			"dryRun": strconv.FormatBool(ev.DryRun)}
		if img != nil {
			props["image"] = img.Image
			if img.Digest != "" {
				props["digest"] = img.Digest
			}
		}
		out = append(out, map[string]any{"source": "imagegate", "policy": policy, "rule": rule, "category": category,
			"result": result, "severity": severity, "message": msg, "timestamp": ts, "resources": []any{resource},
			"properties": props})
	}
	if ev.Error != "" {
		add("imagegate", "decision", "Admission", "error", "high", ev.Error, nil)
		return out
	}
	for i := range ev.Images {
		img := &ev.Images[i]
		if img.Action == "pass" {
			continue
		}
		msg := firstOr(img.Reasons, "image "+img.Image+": "+img.Action)
		for _, m := range img.MissingAttestors {
			add("attestor/"+m.Attestor, "signature", "Image Signature", "fail", "high",
				fmt.Sprintf("image %q is not signed by attestor %q: %s", img.Image, m.Attestor, m.Reason), img)
		}
		for _, st := range img.Strategies {
			result, severity := "warn", "medium"
			switch {
			case img.Action == ActionAllow:
				result, severity = "skip", "info" // an explicit exception
			case st.Action == ActionBlock && img.Action != ActionAllow:
				result, severity = "fail", "high"
			}
			add(fmt.Sprintf("strategy/%d", st.ID), st.Name, "Image Strategy", result, severity, strategyMessage(img, st, msg), img)
		}
		if len(img.Strategies) == 0 && len(img.MissingAttestors) == 0 {
			add("imagegate", img.Action, "Image Strategy", "fail", "high", msg, img)
		}
	}
	return out
}

func strategyMessage(img *ImageEvent, st StrategyHit, fallback string) string {
	needle := fmt.Sprintf("strategy %d ", st.ID)
	for _, r := range img.Reasons {
		if strings.Contains(r, needle) {
			return r
		}
	}
	return fallback
}

func firstOr(xs []string, def string) string {
	if len(xs) > 0 {
		return xs[0]
	}
	return def
}

// PolicyReportSummary counts a PolicyReport's results by outcome, as its
// summary field holds them.
func PolicyReportSummary(results []any) map[string]any {
	sum := map[string]any{"pass": int64(0), "fail": int64(0), "warn": int64(0), "error": int64(0), "skip": int64(0)}
	for _, r := range results {
		if m, ok := r.(map[string]any); ok {
			if k, ok := m["result"].(string); ok {
				if n, ok := sum[k].(int64); ok {
					sum[k] = n + 1
				}
			}
		}
	}
	return sum
}
