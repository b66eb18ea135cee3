package compliance

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Event reasons of runtime Events.
const (
	ReasonBlocked    = "RuntimeImageBlocked"
	ReasonUnsigned   = "RuntimeImageUnsigned"
	ReasonAlerted    = "RuntimeImageAlerted"
	ReasonUndecided  = "RuntimeUndecided"
	ReasonResolved   = "RuntimeViolationResolved"
	eventWindow      = 10 * time.Minute
	maxPendingEvents = 10_000
)

var reasons = map[string]string{ActionBlock: ReasonBlocked, ActionUnsigned: ReasonUnsigned, ActionAlert: ReasonAlerted, ActionError: ReasonUndecided}

// EventWriter writes a Kubernetes Event on the owning controller (or the
// pod) of each workload that starts or stops violating. Changes wait in a
// queue, one entry per workload (the newest wins), written at a bounded
// rate; a repeat of the same reason on the same object within ten minutes
// updates that Event's count instead of making a new one.
type EventWriter struct {
	client   kubernetes.Interface
	log      *slog.Logger
	limit    *rate.Limiter
	instance string

	mu      sync.Mutex
	pending map[string]*corev1.Event // by object
	order   []string
	kick    chan struct{}
	recent  map[string]*corev1.Event // by object and reason
}

var _ Sink = (*EventWriter)(nil)

// NewEventWriter returns a writer of qps Events a second (bursts of burst);
// Run writes.
func NewEventWriter(client kubernetes.Interface, log *slog.Logger, qps float64, burst int) *EventWriter {
	host, _ := os.Hostname()
	return &EventWriter{client: client, log: log, limit: rate.NewLimiter(rate.Limit(qps), burst), instance: host,
		pending: map[string]*corev1.Event{}, kick: make(chan struct{}, 1), recent: map[string]*corev1.Event{}}
}

// Changed queues an Event for each notable change.
func (w *EventWriter) Changed(_ context.Context, changes []Change) {
	w.mu.Lock()
	for _, c := range changes {
		if !c.Notable() {
			continue
		}
		ev := runtimeEvent(c)
		key := c.Key.String()
		if _, ok := w.pending[key]; !ok {
			if len(w.pending) >= maxPendingEvents {
				continue // the queue is full: reports and the API still say it
			}
			w.order = append(w.order, key)
		}
		w.pending[key] = ev
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func runtimeEvent(c Change) *corev1.Event {
	s := c.New
	reason, typ := reasons[s.Action], corev1.EventTypeWarning
	msg := ""
	if c.Kind() == "resolved" {
		reason, typ = ReasonResolved, corev1.EventTypeNormal
		msg = fmt.Sprintf("imagegate: compliant again (was %s) after %s", c.Old.Action, describe(c.Cause))
	} else {
		lines := s.Violations
		if len(lines) == 0 {
			lines = s.Warnings
		}
		if s.Error != "" {
			lines = append(lines, s.Error)
		}
		msg = fmt.Sprintf("imagegate: running workload now %s after %s: %s", s.Action, describe(c.Cause), strings.Join(lines, "; "))
	}
	if len(msg) > 1024 {
		msg = msg[:1021] + "..."
	}
	t := metav1.NewTime(s.DecidedAt)
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: s.Namespace, Name: fmt.Sprintf("%s.%x", s.Name, s.DecidedAt.UnixNano())},
		InvolvedObject: corev1.ObjectReference{Kind: s.Kind, APIVersion: apiVersionOf(s.Kind), Namespace: s.Namespace, Name: s.Name},
		Reason:         reason, Message: msg, Type: typ, FirstTimestamp: t, LastTimestamp: t, Count: 1,
	}
}

func describe(c Cause) string {
	if c.Detail == "" {
		return c.Trigger + " change"
	}
	return c.Trigger + " change (" + c.Detail + ")"
}

// Run writes queued Events until ctx ends.
func (w *EventWriter) Run(ctx context.Context) {
	for {
		w.mu.Lock()
		if len(w.order) == 0 {
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-w.kick:
			}
			continue
		}
		key := w.order[0]
		w.order = w.order[1:]
		ev := w.pending[key]
		delete(w.pending, key)
		w.mu.Unlock()
		if err := w.limit.Wait(ctx); err != nil {
			return
		}
		if err := w.write(ctx, ev); err != nil && ctx.Err() == nil {
			w.log.Warn("runtime Event not written", "object", key, "reason", ev.Reason, "error", err.Error())
		}
	}
}

func (w *EventWriter) write(ctx context.Context, ev *corev1.Event) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ev.Source = corev1.EventSource{Component: "imagegate", Host: w.instance}
	events := w.client.CoreV1().Events(ev.Namespace)
	key := ev.InvolvedObject.Namespace + "/" + ev.InvolvedObject.Kind + "/" + ev.InvolvedObject.Name + "/" + ev.Reason
	for k, e := range w.recent { // only this goroutine touches recent
		if ev.LastTimestamp.Sub(e.LastTimestamp.Time) > eventWindow {
			delete(w.recent, k)
		}
	}
	if prev, ok := w.recent[key]; ok {
		upd := prev.DeepCopy()
		upd.Count++
		upd.LastTimestamp, upd.Message = ev.LastTimestamp, ev.Message
		if got, err := events.Update(ctx, upd, metav1.UpdateOptions{}); err == nil {
			w.recent[key] = got
			return nil
		}
		delete(w.recent, key)
	}
	got, err := events.Create(ctx, ev, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if len(w.recent) < maxPendingEvents {
		w.recent[key] = got
	}
	return nil
}
