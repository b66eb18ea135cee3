package audit

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// EventSink writes each audit event as a Kubernetes Event on the involved
// object (which, for a denied create, never came to exist). Repeats of one
// object and action within AggregateWindow update one Event's count rather
// than create new ones, and API writes are rate-limited: beyond the limit an
// occurrence is only counted, and the next write carries the total.
type EventSink struct {
	client   kubernetes.Interface
	instance string
	window   time.Duration
	limit    *tokenBucket
	recent   map[string]*corev1.Event
	pending  map[string]int32
	timeout  time.Duration
	now      func() time.Time
}

var _ Sink = (*EventSink)(nil)

// Event sink defaults.
const (
	DefaultEventAggregateWindow = 10 * time.Minute
	DefaultEventQPS             = 5
	DefaultEventBurst           = 25
	kubeWriteTimeout            = 5 * time.Second
)

// NewEventSink returns a sink writing Events with client.
func NewEventSink(client kubernetes.Interface) *EventSink {
	host, _ := os.Hostname()
	return &EventSink{client: client, instance: host, window: DefaultEventAggregateWindow,
		limit: newTokenBucket(DefaultEventQPS, DefaultEventBurst, time.Now), recent: map[string]*corev1.Event{},
		pending: map[string]int32{}, timeout: kubeWriteTimeout, now: time.Now}
}

// Name is the sink's metric label.
func (s *EventSink) Name() string { return "kube-events" }

// reasons are the Event reasons per action.
var reasons = map[string]string{ActionBlock: "ImageBlocked", ActionAlert: "ImageAlerted", ActionAllow: "ImageAllowedByException",
	ActionUnsigned: "ImageUnsigned", ActionError: "AdmissionUndecided"}

// Write creates or updates one Event per event; it returns the last error
// and goes on with the others.
func (s *EventSink) Write(events []*Event) error {
	var last error
	now := s.now()
	for key, ev := range s.recent {
		if now.Sub(ev.LastTimestamp.Time) > s.window {
			delete(s.recent, key)
			delete(s.pending, key)
		}
	}
	for _, ev := range events {
		if ev.IsAPI() || ev.Type == TypeRuntime || ev.Namespace == "" || ev.Name == "" {
			continue // Events need a namespaced, named object; API calls have none; runtime ones are written by their monitor
		}
		action := ev.Actions[0]
		key := ev.Namespace + "/" + ev.Kind + "/" + ev.Name + "/" + action
		s.pending[key]++
		if !s.limit.take() {
			continue // counted; the next write for this key carries it
		}
		if err := s.write(key, ev, action); err != nil {
			last = err
		}
	}
	return last
}

func (s *EventSink) write(key string, ev *Event, action string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	events := s.client.CoreV1().Events(ev.Namespace)
	t := metav1.NewTime(ev.Time)
	msg := eventMessage(ev)
	if prev, ok := s.recent[key]; ok {
		upd := prev.DeepCopy()
		upd.Count += s.pending[key]
		upd.LastTimestamp, upd.Message = t, msg
		got, err := events.Update(ctx, upd, metav1.UpdateOptions{})
		if err == nil {
			s.recent[key], s.pending[key] = got, 0
			return nil
		}
		delete(s.recent, key) // gone or changed: start a new one
	}
	typ := corev1.EventTypeWarning
	if ev.Decision == DecisionAllowed && action != ActionAlert {
		typ = corev1.EventTypeNormal
	}
	e := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", ev.Name, ev.Time.UnixNano()), Namespace: ev.Namespace,
			Annotations: map[string]string{"imagegate.dev/event-id": ev.ID}},
		InvolvedObject: corev1.ObjectReference{Kind: ev.Kind, APIVersion: apiVersionOf(ev.Kind), Namespace: ev.Namespace, Name: ev.Name},
		Reason:         reasons[action],
		Message:        msg,
		Type:           typ,
		Source:         corev1.EventSource{Component: "imagegate", Host: s.instance},
		FirstTimestamp: t,
		LastTimestamp:  t,
		Count:          s.pending[key],
	}
	got, err := events.Create(ctx, e, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("event on %s %s/%s: %w", ev.Kind, ev.Namespace, ev.Name, err)
	}
	s.recent[key], s.pending[key] = got, 0
	return nil
}

// eventMessage is the violations (or warnings) of an event, within the
// API's 1 KiB message limit.
func eventMessage(ev *Event) string {
	lines := ev.Violations
	if len(lines) == 0 {
		lines = ev.Warnings
	}
	if len(lines) == 0 {
		for _, img := range ev.Images {
			lines = append(lines, img.Reasons...)
		}
	}
	if ev.Error != "" {
		lines = append(lines, ev.Error)
	}
	msg := "imagegate " + ev.Decision + ": " + strings.Join(lines, "; ")
	if ev.DryRun {
		msg += " (dry run)"
	}
	if len(msg) > 1024 {
		msg = msg[:1021] + "..."
	}
	return msg
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

// tokenBucket allows rate writes a second with bursts of burst.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
	now                 func() time.Time
}

func newTokenBucket(rate, burst float64, now func() time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, burst: burst, tokens: burst, last: now(), now: now}
}

func (b *tokenBucket) take() bool {
	t := b.now()
	b.tokens = min(b.burst, b.tokens+t.Sub(b.last).Seconds()*b.rate)
	b.last = t
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
