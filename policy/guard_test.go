package policy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/policy"
)

const guardStrategy = strategyHead + "  strategyId: 1\n  ruleAction: 2\n  imageName: [\"bad-*\"]\n"

func snapOf(t *testing.T, docs ...string) *policy.Snapshot {
	t.Helper()
	var objs []policy.Object
	for _, d := range docs {
		o, err := policy.Parse("x.yaml", []byte(d))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	s, err := policy.NewSnapshot(objs...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validAttestor is an Attestor with a freshly generated key.
func validAttestor(t *testing.T) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	pk := strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	return "apiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: a}\nspec:\n  publicKeys:\n  - |\n" + indent(pk, "    ") + "\n"
}

func TestEmptyGuard(t *testing.T) {
	enforcing, empty, attestorsOnly := snapOf(t, guardStrategy), snapOf(t), snapOf(t, validAttestor(t))
	cases := []struct {
		name       string
		allowEmpty bool
		loaded     []*policy.Snapshot // in force, in order
		next       *policy.Snapshot
		refused    bool
		status     string // in Status after Check (and Loaded when not refused)
	}{
		{"start empty", false, nil, empty, false, "every image is admitted"},
		{"start enforcing", false, nil, enforcing, false, ""},
		{"enforcing to empty", false, []*policy.Snapshot{enforcing}, empty, true, "an empty set was refused; the last good set (1 policies and strategies) stays"},
		{"enforcing to attestors only", false, []*policy.Snapshot{enforcing}, attestorsOnly, true, "refused"},
		{"enforcing to empty, allowed", true, []*policy.Snapshot{enforcing}, empty, false, "every image is admitted"},
		{"empty to empty", false, []*policy.Snapshot{empty}, empty, false, "every image is admitted"},
		{"back to enforcing", false, []*policy.Snapshot{empty, enforcing}, enforcing, false, ""},
		{"empty then enforcing then empty", false, []*policy.Snapshot{empty, enforcing}, empty, true, "refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := policy.NewEmptyGuard(c.allowEmpty)
			for _, s := range c.loaded {
				if err := g.Check(s); err != nil {
					t.Fatal(err)
				}
				g.Loaded(s)
			}
			err := g.Check(c.next)
			if refused := errors.Is(err, policy.ErrEmptySet); refused != c.refused {
				t.Fatalf("Check: %v; want refused %v", err, c.refused)
			}
			if err == nil {
				g.Loaded(c.next)
			}
			if st := g.Status(); !strings.Contains(st, c.status) || (c.status == "") != (st == "") {
				t.Errorf("Status %q; want %q", st, c.status)
			}
		})
	}
}

// TestWatchDeletedPoliciesAreRefused: the directory watcher with the guard
// between it and the set in force, as serve runs it: deleting every policy
// file is refused (the strategy stays in force), restoring it loads again.
func TestWatchDeletedPoliciesAreRefused(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(file, []byte(guardStrategy), 0o644); err != nil {
		t.Fatal(err)
	}
	g := policy.NewEmptyGuard(false)
	type result struct {
		strategies int
		err        error
	}
	results := make(chan result, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go policy.Watch(ctx, dir, 20*time.Millisecond, func(s *policy.Snapshot, err error) {
		if err == nil {
			err = g.Check(s)
		}
		if err != nil {
			results <- result{err: err}
			return
		}
		g.Loaded(s)
		results <- result{strategies: len(s.Strategies())}
	})
	next := func() result {
		t.Helper()
		select {
		case r := <-results:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("the watcher reported nothing")
		}
		return result{}
	}
	if r := next(); r.err != nil || r.strategies != 1 {
		t.Fatalf("first load: %+v", r)
	}
	os.Remove(file)
	if r := next(); !errors.Is(r.err, policy.ErrEmptySet) {
		t.Fatalf("after deleting every file: %+v; want the empty set refused", r)
	}
	if !strings.Contains(g.Status(), "refused") {
		t.Errorf("Status %q", g.Status())
	}
	os.WriteFile(file, []byte(guardStrategy), 0o644)
	if r := next(); r.err != nil || r.strategies != 1 {
		t.Fatalf("restored: %+v", r)
	}
	if g.Status() != "" {
		t.Errorf("Status after the restore %q", g.Status())
	}
}
