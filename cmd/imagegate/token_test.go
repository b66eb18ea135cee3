package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadToken(t *testing.T) {
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
		{"empty file", write("empty", " \n"), "", "the file is empty"},
		{"missing file", filepath.Join(dir, "nope"), "", "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readToken("--x-token-file", c.path)
			if got != c.want || (c.err == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "<nil>"))) {
				t.Errorf("readToken = %q, %v; want %q, error containing %q", got, err, c.want, c.err)
			}
		})
	}
}
