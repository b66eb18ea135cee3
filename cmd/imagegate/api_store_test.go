package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/api"
	"github.com/imagegate/imagegate/kube"
)

// TestAPIStoreFollowsPolicySource: the management API writes where the
// webhook reads, the directory or the custom resources.
func TestAPIStoreFollowsPolicySource(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "one.yaml")
	kubeconfig := unreachableKubeconfig(t, dir)
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		flags    serveFlags
		wantType string
		wantErr  string
	}{
		{"file source writes the directory", serveFlags{policies: dir, kube: kubeFlags{source: "file"}}, "dir", ""},
		{"kube source writes the custom resources", serveFlags{kube: kubeFlags{source: "kube", kubeconfig: kubeconfig}}, "kube", ""},
		{"file source needs a directory", serveFlags{policies: file, kube: kubeFlags{source: "file"}}, "", "must be a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, err := tc.flags.kube.connect(true)
			if err != nil {
				t.Fatal(err)
			}
			s, err := (&apiFlags{}).store(context.Background(), &tc.flags, client)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch s.(type) {
			case *api.DirStore:
				if tc.wantType != "dir" {
					t.Errorf("got a DirStore, want %s", tc.wantType)
				}
			case *kube.Store:
				if tc.wantType != "kube" {
					t.Errorf("got a kube.Store, want %s", tc.wantType)
				}
			default:
				t.Errorf("unexpected store %T", s)
			}
		})
	}
}
