package kube

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/imagegate/imagegate/policy"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Condition types written to each policy resource's status.
const (
	ConditionAccepted = "Accepted"
	ConditionInvalid  = "Invalid"
)

// maxConditionMessage bounds a condition message written to status (the
// comparison with what is there truncates alike).
const maxConditionMessage = 32768

// condition is the wire form of metav1.Condition.
type condition struct {
	Type, Status, Reason, Message string
}

// conditions computes an object's conditions from the outcome of the set.
func (it *item) conditions(setErr error) []condition {
	switch {
	case len(it.errs) > 0:
		msg := joinLines(it.errs)
		return []condition{
			{ConditionAccepted, "False", it.kind, "not in force: " + msg},
			{ConditionInvalid, "True", it.kind, msg},
		}
	case setErr != nil:
		msg := "other policy resources have errors, so the set is not loaded and the last good one stays in force"
		var se *SetError
		if errors.As(setErr, &se) && len(se.Problems) > 0 {
			msg += ": " + se.Problems[0]
		} else {
			msg += ": " + setErr.Error()
		}
		return []condition{
			{ConditionAccepted, "False", "SetRejected", msg},
			{ConditionInvalid, "False", "Valid", "no problems with this object"},
		}
	}
	return []condition{
		{ConditionAccepted, "True", "Loaded", "in force"},
		{ConditionInvalid, "False", "Valid", "no problems with this object"},
	}
}

// writeStatus updates the status of each object whose conditions changed.
// Every replica computes the same conditions, so a second writer finds
// nothing to do; conflicts are left for the next event.
func (w *state) writeStatus(ctx context.Context, items []*item, setErr error) {
	for _, it := range items {
		want := it.conditions(setErr)
		old := currentConditions(it.u)
		if sameConditions(old, it.u.GetGeneration(), want) {
			continue
		}
		u := it.u.DeepCopy()
		now := metav1.NewTime(time.Now()).UTC().Format(time.RFC3339)
		var out []any
		for _, c := range want {
			ts := now
			if prev, ok := old[c.Type]; ok && prev["status"] == c.Status {
				if t, ok := prev["lastTransitionTime"].(string); ok && t != "" {
					ts = t
				}
			}
			out = append(out, map[string]any{
				"type": c.Type, "status": c.Status, "reason": c.Reason, "message": truncate(c.Message, maxConditionMessage),
				"lastTransitionTime": ts, "observedGeneration": u.GetGeneration(),
			})
		}
		_ = unstructured.SetNestedSlice(u.Object, out, "status", "conditions")
		_ = unstructured.SetNestedField(u.Object, u.GetGeneration(), "status", "observedGeneration")
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.client.Resource(it.res.GVR()).UpdateStatus(c, u, metav1.UpdateOptions{FieldManager: w.opts.fieldOwner})
		cancel()
		switch {
		case err == nil, apierrors.IsConflict(err), apierrors.IsNotFound(err):
		default:
			w.opts.log.Warn("cannot write policy resource status", "kind", it.res.Kind, "name", it.u.GetName(), "error", err.Error())
		}
	}
}

func currentConditions(u *unstructured.Unstructured) map[string]map[string]any {
	out := map[string]map[string]any{}
	list, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range list {
		if m, ok := c.(map[string]any); ok {
			if t, ok := m["type"].(string); ok {
				out[t] = m
			}
		}
	}
	return out
}

// sameConditions reports whether old (currentConditions) already says
// want for this generation, as writeStatus would write it.
func sameConditions(old map[string]map[string]any, generation int64, want []condition) bool {
	if len(old) != len(want) {
		return false
	}
	for _, c := range want {
		o, ok := old[c.Type]
		if !ok || o["status"] != c.Status || o["reason"] != c.Reason || o["message"] != truncate(c.Message, maxConditionMessage) {
			return false
		}
		if g, _ := o["observedGeneration"].(int64); g != generation {
			return false
		}
	}
	return true
}

func errorLines(err error) []string {
	var fes policy.Errors
	if errors.As(err, &fes) {
		out := make([]string, len(fes))
		for i, fe := range fes {
			out[i] = fe.Error()
		}
		return out
	}
	return []string{err.Error()}
}

func joinLines(ss []string) string { return strings.Join(ss, "\n") }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
