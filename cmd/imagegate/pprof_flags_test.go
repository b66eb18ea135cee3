package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestPprofListen(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "example.com:6060", "10.0.0.1:6060", "not an address"} {
		if err := (&pprofFlags{listen: addr}).start(context.Background(), log); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("%q: %v; want refused as not loopback", addr, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := (&pprofFlags{listen: addr}).start(ctx, log); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Errorf("%d %.100s", resp.StatusCode, body)
	}
	// An execution trace: Go's trace format begins "go 1.".
	tr, err := http.Get("http://" + addr + "/debug/pprof/trace?seconds=0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Body.Close()
	head := make([]byte, 5)
	if _, err := io.ReadFull(tr.Body, head); tr.StatusCode != http.StatusOK || err != nil || string(head) != "go 1." {
		t.Errorf("trace: %d %q %v", tr.StatusCode, head, err)
	}
}
