package compliance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/compliance"
	"github.com/imagegate/imagegate/inventory"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
)

// A malicious digest reaches the PolicyReport (fail, category runtime), an
// Event on the pod, the annotation and the API; clearing it resolves all of
// them.
func TestSinksReportAndResolve(t *testing.T) {
	var objs []any
	for i := range 4 {
		objs = append(objs, pod("a", fmt.Sprintf("p%d", i), i, nil))
	}
	f := start(t, 0, objs...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schemaGVR]string{audit.PolicyReportGVR: "PolicyReportList"})
	log := slog.New(slog.DiscardHandler)
	reports := compliance.NewReportWriter(dyn, f.mon, log)
	events := compliance.NewEventWriter(f.client, log, 100, 100)
	f.mon.AddSinks(reports, events, compliance.NewAnnotator(f.client, log))
	go reports.Run(ctx)
	go events.Run(ctx)

	if err := f.store.Import(ctx, nil, map[string]string{digest(2): "cryptominer"}); err != nil {
		t.Fatal(err)
	}
	f.reader.Refresh()
	f.eventually("report fails p2", func() error {
		rep, err := dyn.Resource(audit.PolicyReportGVR).Namespace("a").Get(ctx, compliance.ReportName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		results, _, _ := unstructuredSlice(rep.Object, "results")
		if len(results) != 1 {
			return fmt.Errorf("%d results", len(results))
		}
		r := results[0].(map[string]any)
		if r["result"] != "fail" || r["category"] != "runtime" || r["source"] != "imagegate" || r["policy"] != "strategy/1" ||
			!strings.Contains(r["message"].(string), "malicious image") {
			return fmt.Errorf("result %v", r)
		}
		return nil
	})
	f.eventually("event and annotation", func() error {
		evs, _ := f.client.CoreV1().Events("a").List(ctx, metav1.ListOptions{})
		if len(evs.Items) != 1 || evs.Items[0].Reason != compliance.ReasonBlocked || evs.Items[0].InvolvedObject.Name != "p2" {
			return fmt.Errorf("events %+v", evs.Items)
		}
		p, _ := f.client.CoreV1().Pods("a").Get(ctx, "p2", metav1.GetOptions{})
		if !strings.HasPrefix(p.Annotations[inventory.ViolationAnnotation], "block: ") {
			return fmt.Errorf("annotations %v", p.Annotations)
		}
		return nil
	})
	h := &compliance.Handler{Monitor: f.mon, Token: "secret"}
	get := func(query, token string) (int, compliance.Page) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/workloads?"+query, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		var page compliance.Page
		json.Unmarshal(rr.Body.Bytes(), &page)
		return rr.Code, page
	}
	for _, c := range []struct {
		query, token string
		code, n      int
	}{
		{"", "", 401, 0},
		{"", "wrong", 401, 0},
		{"", "secret", 200, 4},
		{"action=violating", "secret", 200, 1},
		{"action=block&namespace=a", "secret", 200, 1},
		{"strategy=block-malicious", "secret", 200, 1},
		{"strategy=1", "secret", 200, 1},
		{"image=registry.example.com/team/app2", "secret", 200, 1},
		{"image=*/app*", "secret", 200, 4},
		{"namespace=b", "secret", 200, 0},
		{"limit=3", "secret", 200, 3},
		{"action=deny", "secret", 400, 0},
		{"limit=0", "secret", 400, 0},
		{"verb=x", "secret", 400, 0},
	} {
		code, page := get(c.query, c.token)
		if code != c.code || len(page.Workloads) != c.n {
			t.Errorf("%q: %d with %d workloads, want %d with %d", c.query, code, len(page.Workloads), c.code, c.n)
		}
	}
	if _, page := get("limit=3", "secret"); page.NextPageToken == "" {
		t.Error("no next page token")
	} else if _, next := get("limit=3&pageToken="+page.NextPageToken, "secret"); len(next.Workloads) != 1 {
		t.Errorf("second page: %d workloads", len(next.Workloads))
	}

	if _, err := f.store.ClearMalicious(ctx, digest(2)); err != nil {
		t.Fatal(err)
	}
	f.reader.Refresh()
	f.eventually("resolved everywhere", func() error {
		rep, _ := dyn.Resource(audit.PolicyReportGVR).Namespace("a").Get(ctx, compliance.ReportName, metav1.GetOptions{})
		results, _, _ := unstructuredSlice(rep.Object, "results")
		if len(results) != 1 || results[0].(map[string]any)["result"] != "pass" || results[0].(map[string]any)["properties"].(map[string]any)["resolved"] != "true" {
			return fmt.Errorf("results %v", results)
		}
		evs, _ := f.client.CoreV1().Events("a").List(ctx, metav1.ListOptions{})
		found := false
		for _, e := range evs.Items {
			found = found || (e.Reason == compliance.ReasonResolved && e.Type == corev1.EventTypeNormal)
		}
		if !found {
			return fmt.Errorf("no resolved event in %d", len(evs.Items))
		}
		p, _ := f.client.CoreV1().Pods("a").Get(ctx, "p2", metav1.GetOptions{})
		if _, ok := p.Annotations[inventory.ViolationAnnotation]; ok {
			return fmt.Errorf("annotation left: %v", p.Annotations)
		}
		return nil
	})
	time.Sleep(50 * time.Millisecond)
}

type schemaGVR = schema.GroupVersionResource

func unstructuredSlice(obj map[string]any, field string) ([]any, bool, error) {
	return unstructured.NestedSlice(obj, field)
}
