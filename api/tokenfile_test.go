package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path, want, err string
	}{
		{"token with newline", write("ok", "s3cret\n"), "s3cret", ""},
		{"empty file", write("empty", " \n"), "", "--x-token-file " + filepath.Join(dir, "empty") + ": the file is empty"},
		{"missing file", filepath.Join(dir, "nope"), "", "--x-token-file: stat"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tf, err := LoadTokenFile("--x-token-file", c.path, "scanner")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p, ok := tf.Check(c.want); !ok || p != "scanner" {
				t.Errorf("Check(%q) = %q, %v", c.want, p, ok)
			}
			if _, ok := tf.Check(c.want + "x"); ok {
				t.Error("a longer token matched")
			}
		})
	}
}

// writeAged writes a file and sets its mtime, so that two versions written
// within the file system's time granularity still differ.
func writeAged(t *testing.T, p, body string, age time.Duration) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(-age)
	os.Chtimes(p, mt, mt)
}

// TestTokenFilesRotateAndRevoke: the single-token files (scan, audit) and
// the API tokens file take a new version without a restart, keep the
// tokens in force on a version that does not load, and revoke their tokens
// (reported) when deleted, until the file is back.
func TestTokenFilesRotateAndRevoke(t *testing.T) {
	type checker func(token string) bool
	cases := []struct {
		name               string
		first, second, bad string
		oldTok, newTok     string
		open               func(t *testing.T, p string, reload, revoked *[]error) checker
	}{
		{"token file", "old-token\n", "new-token\n", " \n", "old-token", "new-token",
			func(t *testing.T, p string, reload, revoked *[]error) checker {
				tf, err := LoadTokenFile("--scan-token-file", p, "scan-token")
				if err != nil {
					t.Fatal(err)
				}
				tf.ReloadEvery = 0
				tf.OnReloadError = func(err error) { *reload = append(*reload, err) }
				tf.OnRevoked = func(err error) { *revoked = append(*revoked, err) }
				return func(tok string) bool { _, ok := tf.Check(tok); return ok }
			}},
		{"tokens file", "old-token,alice\n", "new-token,bob\n", "broken\n", "old-token", "new-token",
			func(t *testing.T, p string, reload, revoked *[]error) checker {
				tf, err := LoadTokens(p)
				if err != nil {
					t.Fatal(err)
				}
				tf.ReloadEvery = 0
				tf.OnReloadError = func(err error) { *reload = append(*reload, err) }
				tf.OnRevoked = func(err error) { *revoked = append(*revoked, err) }
				return func(tok string) bool { _, ok := tf.lookup(tok); return ok }
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "token")
			writeAged(t, p, c.first, time.Hour)
			var reload, revoked []error
			check := c.open(t, p, &reload, &revoked)
			steps := []struct {
				name     string
				do       func()
				old, new bool
			}{
				{"loaded", func() {}, true, false},
				{"rotated", func() { writeAged(t, p, c.second, 50*time.Minute) }, false, true},
				{"bad version keeps the token", func() { writeAged(t, p, c.bad, 40*time.Minute) }, false, true},
				{"deleted revokes", func() { os.Remove(p) }, false, false},
				{"still deleted", func() {}, false, false},
				{"back", func() { writeAged(t, p, c.first, 30*time.Minute) }, true, false},
			}
			for _, s := range steps {
				s.do()
				if got := check(c.oldTok); got != s.old {
					t.Errorf("%s: old token accepted %v, want %v", s.name, got, s.old)
				}
				if got := check(c.newTok); got != s.new {
					t.Errorf("%s: new token accepted %v, want %v", s.name, got, s.new)
				}
			}
			if len(reload) != 1 {
				t.Errorf("reload errors reported %v, want one", reload)
			}
			if len(revoked) != 1 || !strings.Contains(revoked[0].Error(), "was deleted") {
				t.Errorf("revocations reported %v, want one", revoked)
			}
		})
	}
}
