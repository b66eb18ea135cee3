package webhook_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

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
			for range b.N {
				req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

func benchReview(ns string) []byte {
	return []byte(fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},`+
		`"resource":{"group":"","version":"v1","resource":"pods"},"namespace":%q,"operation":"CREATE","userInfo":{"username":"bench"},`+
		`"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p-1","namespace":%q,"labels":{"app":"web"}},"spec":{"containers":[`+
		`{"name":"a","image":"registry.example.com/team/app:1.0"},{"name":"b","image":"noisy"},{"name":"c","image":"nginx:1.25"}]}}}}`, ns, ns))
}
