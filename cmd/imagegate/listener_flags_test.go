package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/kube"
	"github.com/imagegate/imagegate/webhook"
)

// TestRequireClientCertWrapsEveryReviewRoute: --require-client-cert guards
// both routes the API server calls (/validate and, with the kube source,
// /validate-policy) and leaves the bearer-token routes to their tokens.
func TestRequireClientCertWrapsEveryReviewRoute(t *testing.T) {
	caFile, _ := writeClientPKI(t, t.TempDir())
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, require := range []bool{false, true} {
		l := &listenerFlags{tlsProfile: "modern", clientCAFile: caFile, requireClientCert: require}
		if err := l.check(); err != nil {
			t.Fatal(err)
		}
		srv := &webhook.Server{Handler: ok, Extra: map[string]http.Handler{"POST " + kube.ValidationPath: ok, "POST /api/v1/scans": ok}}
		if err := l.apply(srv); err != nil {
			t.Fatal(err)
		}
		if srv.ClientCAs == nil {
			t.Error("no client CAs")
		}
		for route, h := range map[string]http.Handler{"/validate": srv.Handler, kube.ValidationPath: srv.Extra["POST "+kube.ValidationPath], "/api/v1/scans": srv.Extra["POST /api/v1/scans"]} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", route, nil)) // no TLS: no certificate
			want := http.StatusTeapot
			if require && route != "/api/v1/scans" {
				want = http.StatusUnauthorized
			}
			if rec.Code != want {
				t.Errorf("require %v, %s without a certificate: %d, want %d", require, route, rec.Code, want)
			}
		}
	}
	l := &listenerFlags{tlsProfile: "modern", clientCAFile: filepath.Join(t.TempDir(), "missing.crt")}
	l.check()
	if err := l.apply(&webhook.Server{Handler: ok}); err == nil {
		t.Error("a missing --client-ca-file was accepted")
	}
}
