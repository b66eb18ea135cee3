package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofFlags serve Go's profiles (heap, CPU, goroutines) on a loopback
// address, for measuring where memory goes (docs/benchmarks.md); off by
// default.
type pprofFlags struct{ listen string }

func (p *pprofFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.listen, "pprof-listen", "", "loopback address (127.0.0.1:PORT) serving /debug/pprof/ profiles; off when empty")
}

// start serves the profiles until ctx ends. Only loopback: profiles show
// memory contents' shapes and cost CPU to take.
func (p *pprofFlags) start(ctx context.Context, log *slog.Logger) error {
	if p.listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(p.listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--pprof-listen %q: expected a loopback address such as 127.0.0.1:6060", p.listen)
	}
	ln, err := net.Listen("tcp", p.listen)
	if err != nil {
		return fmt.Errorf("--pprof-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	// An execution trace shows where an admission waited (for a core, the
	// network, the collector), which a CPU profile cannot.
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("pprof listener stopped", "error", err.Error())
		}
	}()
	return nil
}
