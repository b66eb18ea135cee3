package compliance

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/imagegate/imagegate/inventory"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Annotator is --runtime-action=annotate: it writes
// imagegate.dev/runtime-violation on the pods of a workload that breaks a
// policy (its action and first violation) and removes it when the workload
// is compliant again. Nothing else about the pod changes.
type Annotator struct {
	client kubernetes.Interface
	log    *slog.Logger
}

var (
	_ Sink       = (*Annotator)(nil)
	_ Reconciler = (*Annotator)(nil)
)

// NewAnnotator returns an Annotator.
func NewAnnotator(client kubernetes.Interface, log *slog.Logger) *Annotator {
	return &Annotator{client: client, log: log}
}

// Changed annotates violating workloads' pods and clears resolved ones'.
func (a *Annotator) Changed(ctx context.Context, changes []Change) {
	for _, c := range changes {
		switch {
		case c.New != nil && c.New.Violating():
			a.set(ctx, c.New, annotationValue(c.New))
		case c.New != nil && c.Old != nil && c.Old.Violating():
			a.set(ctx, c.New, "")
		}
	}
}

// Reconcile annotates every violating workload's pods.
func (a *Annotator) Reconcile(ctx context.Context, states []*State) {
	for _, s := range states {
		if s.Violating() {
			a.set(ctx, s, annotationValue(s))
		}
	}
}

func annotationValue(s *State) string {
	v := s.Action
	lines := append(append([]string{}, s.Violations...), s.Warnings...)
	if s.Error != "" {
		lines = append(lines, s.Error)
	}
	if len(lines) > 0 {
		v += ": " + lines[0]
	}
	if len(v) > 512 {
		v = v[:509] + "..."
	}
	return v
}

func (a *Annotator) set(ctx context.Context, s *State, value string) {
	var v any // null removes the annotation
	if value != "" {
		v = value
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{inventory.ViolationAnnotation: v}}})
	for _, name := range s.PodNames() {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := a.client.CoreV1().Pods(s.Namespace).Patch(pctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "imagegate"})
		cancel()
		if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			a.log.Warn("runtime annotation not written", "namespace", s.Namespace, "pod", name, "error", err.Error())
		}
	}
}
