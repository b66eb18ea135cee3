package audit_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
	"github.com/imagegate/imagegate/workload"
)

type failingDecider struct{}

func (failingDecider) Decide(context.Context, *workload.Object) (*rego.Decision, error) {
	return nil, errors.New("admission: gathering facts: registry unreachable")
}

// TestUndecidedAdmissionsAreEvents: requests that could not be decided, or
// carried an object that does not decode, are error events with what was
// answered (denied, or allowed when failing open).
func TestUndecidedAdmissionsAreEvents(t *testing.T) {
	tests := []struct {
		name, body, decision, errSays string
		failOpen                      bool
		images                        []string
	}{
		{"facts failed, fail closed", podReview("u1", "shop", "web", false, "reg/app:1"), "denied", "registry unreachable", false, []string{"reg/app:1"}},
		{"facts failed, fail open", podReview("u2", "shop", "web", false, "reg/app:1"), "allowed", "registry unreachable", true, []string{"reg/app:1"}},
		{"object does not decode", strings.Replace(podReview("u3", "shop", "web", false, "reg/app:1"), `"containers":[`, `"containers":[7,`, 1), "denied", "", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			rec, err := audit.NewRecorder([]audit.Sink{sink})
			if err != nil {
				t.Fatal(err)
			}
			h, err := webhook.NewHandler(failingDecider{}, webhook.WithAuditor(rec), webhook.WithFailOpen(tt.failOpen))
			if err != nil {
				t.Fatal(err)
			}
			admit(t, h, tt.body)
			rec.Close()
			if len(sink.events) != 1 {
				t.Fatalf("%d events, want 1", len(sink.events))
			}
			ev := sink.events[0]
			var imgs []string
			for _, img := range ev.Images {
				imgs = append(imgs, img.Image)
			}
			if ev.Decision != tt.decision || !slices.Equal(ev.Actions, []string{"error"}) || !strings.Contains(ev.Error, tt.errSays) ||
				ev.Error == "" || ev.Namespace != "shop" || ev.User.Username != "alice" || !slices.Equal(imgs, tt.images) {
				t.Errorf("event %+v", ev)
			}
		})
	}
}
