package webhook_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
	"github.com/imagegate/imagegate/workload"
)

func podWithImages(n int) string {
	var cs []string
	for i := range n {
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":"registry.example.com/app%d:1"}`, i, i))
	}
	// A repeated image is one image.
	cs = append(cs, `{"name":"again","image":"registry.example.com/app0:1"}`)
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},"spec":{"containers":[` + strings.Join(cs, ",") + `]}}`
}

// A workload with more distinct images than the bound is denied with a
// reason, before any of its images costs a registry round trip; one at the
// bound is decided.
func TestHandlerBoundsImagesPerRequest(t *testing.T) {
	var decided atomic.Int32
	d := deciderFunc(func(_ context.Context, obj *workload.Object) (*rego.Decision, error) {
		decided.Add(1)
		return &rego.Decision{Allowed: true}, nil
	})
	for _, failOpen := range []bool{false, true} {
		h, err := webhook.NewHandler(d, webhook.WithMaxImages(10), webhook.WithFailOpen(failOpen))
		if err != nil {
			t.Fatal(err)
		}
		decided.Store(0)
		_, out := post(t, h, reviewJSON("CREATE", "Pod", "default", podWithImages(10), ""), "application/json", "")
		if !out.Response.Allowed || decided.Load() != 1 {
			t.Errorf("10 images: %+v, decided %d times", out.Response, decided.Load())
		}
		_, out = post(t, h, reviewJSON("CREATE", "Pod", "default", podWithImages(1000), ""), "application/json", "")
		if out.Response.Allowed || decided.Load() != 1 || out.Response.Status == nil ||
			!strings.Contains(out.Response.Status.Message, "has 1000 distinct images, more than the 10 imagegate checks in one request") {
			t.Errorf("1000 images, failOpen=%v: %s, decided %d times", failOpen, fmt32(out), decided.Load())
		}
	}
	if _, err := webhook.NewHandler(d, webhook.WithMaxImages(0)); err == nil {
		t.Error("zero images accepted")
	}
}
