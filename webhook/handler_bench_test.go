package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/test/load/reviews"
	"github.com/imagegate/imagegate/webhook"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkHandler measures one admission through the handler, without
// TLS and the network: an exempt namespace (decode the envelope, answer),
// and a 3-container pod decided by the engine (repeated, so the decision
// cache answers). The difference is what the policy path adds per request.
func BenchmarkHandler(b *testing.B) {
	h, err := webhook.NewHandler(realDecider(b), webhook.WithExemptNamespaces("kube-system"),
		webhook.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), webhook.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		b.Fatal(err)
	}
	for _, ns := range []string{"kube-system", "default"} {
		body := benchReview(ns)
		b.Run("namespace="+ns, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for range b.N {
				serveOnce(b, h, body)
			}
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkHandlerLoad decides test/load's requests (reviews.Shapes: 5.6 KB
// pods against its 10 strategies and facts) as imagegate serve wires the
// handler for that test: what one request costs the server without TLS.
func BenchmarkHandlerLoad(b *testing.B) {
	h := loadHandler(b)
	for _, s := range reviews.Shapes {
		// Distinct pods cycle through more namespaces than the decision
		// cache holds, so none is answered from it.
		bodies := make([][]byte, 1)
		if s == reviews.Distinct {
			bodies = make([][]byte, 8192)
		}
		for i := range bodies {
			bodies[i] = reviews.Review(s, int64(i), "default")
		}
		b.Run("shape="+string(s), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bodies[0])))
			cpu := processCPU()
			for i := range b.N {
				serveOnce(b, h, bodies[i%len(bodies)])
			}
			reportCPU(b, cpu)
		})
	}
}

func serveOnce(tb testing.TB, h http.Handler, body []byte) {
	req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		tb.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

// loadHandler is the handler imagegate serve builds for test/load/run.sh:
// policies and facts from test/load/testdata, cluster id load, no auditor.
func loadHandler(tb testing.TB) *webhook.Handler {
	tb.Helper()
	snap, err := policy.LoadDir("../test/load/testdata/policies")
	if err != nil {
		tb.Fatal(err)
	}
	e, err := rego.New(context.Background(), snap, rego.WithClusterID("load"))
	if err != nil {
		tb.Fatal(err)
	}
	f, err := facts.LoadFile("../test/load/testdata/facts.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	h, err := webhook.NewHandler(admission.NewDecider(admission.Static{E: e}, f), webhook.WithExemptNamespaces("kube-system"),
		webhook.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), webhook.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func benchReview(ns string) []byte {
	return []byte(fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},`+
		`"resource":{"group":"","version":"v1","resource":"pods"},"namespace":%q,"operation":"CREATE","userInfo":{"username":"bench"},`+
		`"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p-1","namespace":%q,"labels":{"app":"web"}},"spec":{"containers":[`+
		`{"name":"a","image":"registry.example.com/team/app:1.0"},{"name":"b","image":"noisy"},{"name":"c","image":"nginx:1.25"}]}}}}`, ns, ns))
}
