// Command floor is the least an admission webhook can do, for comparison
// with imagegate serve under test/load: it reads the AdmissionReview, decodes
// the pod's images with encoding/json and allows it. It serves through
// webhook.Server, so TLS (profile, certificates) and connection handling are
// imagegate's own; only the decision is missing.
//
//	go run ./test/load/floor -listen 127.0.0.1:8444 -tls-cert-file tls.crt -tls-private-key-file tls.key
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/imagegate/imagegate/webhook"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8444", "address to serve on")
	cert := flag.String("tls-cert-file", "", "serving certificate")
	key := flag.String("tls-private-key-file", "", "its key")
	http2 := flag.Bool("http2", false, "offer HTTP/2 beside HTTP/1.1, as imagegate serve --http2")
	flag.Parse()
	certs, err := webhook.NewCertReloader(*cert, *key)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &webhook.Server{Listen: *listen, Handler: http.HandlerFunc(allow), Ready: func() bool { return true },
		Certs: certs, HTTP1Only: !*http2, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	if err := srv.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

type container struct {
	Image string `json:"image"`
}

type review struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    struct {
		UID    string `json:"uid"`
		Object struct {
			Spec struct {
				Containers     []container `json:"containers"`
				InitContainers []container `json:"initContainers"`
			} `json:"spec"`
		} `json:"object"`
	} `json:"request"`
}

type answer struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Response   struct {
		UID     string `json:"uid"`
		Allowed bool   `json:"allowed"`
	} `json:"response"`
}

// allow decodes the review and its images, and allows it.
func allow(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 3<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var rv review
	if err := json.Unmarshal(body, &rv); err != nil || len(rv.Request.Object.Spec.Containers) == 0 {
		http.Error(w, "not a pod review", http.StatusBadRequest)
		return
	}
	a := answer{APIVersion: rv.APIVersion, Kind: rv.Kind}
	a.Response.UID, a.Response.Allowed = rv.Request.UID, true
	b, _ := json.Marshal(a)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
