package check

import (
	"context"
	"sync"

	"github.com/imagegate/imagegate/attestation"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
	"github.com/imagegate/imagegate/workload"
)

// resolvedDigest is an image's digest or the reason it was not resolved.
type resolvedDigest struct {
	digest string
	err    error
}

// resolveDigests resolves every image of obj, as the cluster's digest
// pinning does before the validating webhook decides, and returns a copy of
// obj whose images carry those digests (references stay as written, so
// messages name them as written), plus each image's digest. Images whose
// tag does not resolve stay by tag, as pinning leaves them.
func resolveDigests(ctx context.Context, r webhook.DigestResolver, obj *workload.Object) (*workload.Object, []resolvedDigest) {
	out := make([]resolvedDigest, len(obj.Images))
	pinned := *obj
	pinned.Images = append([]workload.Image(nil), obj.Images...)
	var wg sync.WaitGroup
	for i, img := range obj.Images {
		if img.Err != nil {
			continue // the decision names the reference as invalid
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := r.Resolve(ctx, attestation.Credentials{}, img)
			out[i] = resolvedDigest{digest: d, err: err}
			if err == nil {
				pinned.Images[i].Digest = d
			}
		}()
	}
	wg.Wait()
	return &pinned, out
}

// withDigests pairs a decision's images with their digests (nil: none known).
func withDigests(imgs []rego.ImageDecision, digests []resolvedDigest) []Image {
	out := make([]Image, len(imgs))
	for i, img := range imgs {
		out[i].ImageDecision = img
		if i < len(digests) {
			out[i].Digest = digests[i].digest
			if digests[i].err != nil {
				out[i].DigestError = digests[i].err.Error()
			}
		}
	}
	return out
}
