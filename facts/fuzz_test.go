package facts_test

import (
	"context"
	"os"
	"testing"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/workload"
)

// FuzzParseFile: any facts file parses or is refused, never a panic; a
// parsed one answers lookups of its own images.
func FuzzParseFile(f *testing.F) {
	if b, err := os.ReadFile("../examples/facts.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"images":{"a@sha256:00":{"digest":"sha256:00","attestors":["x"]}}}`))
	f.Add([]byte("images:\n  x: null\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := facts.ParseFile(data)
		if err != nil {
			return
		}
		var imgs []workload.Image
		for ref := range file.Images {
			imgs = append(imgs, workload.ParseImage(ref))
		}
		got, err := file.Facts(context.Background(), facts.Request{Images: imgs})
		if err != nil || len(got) != len(imgs) {
			t.Fatalf("facts for %d images: %d, %v", len(imgs), len(got), err)
		}
		for i, g := range got {
			if g == nil {
				t.Fatalf("nil facts for %q", imgs[i].Ref)
			}
		}
	})
}
