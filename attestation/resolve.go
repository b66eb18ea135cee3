package attestation

import (
	"context"

	"github.com/imagegate/imagegate/workload"
)

// Resolve returns the digest img names at its registry now: the one written,
// or what its tag resolves to. Unlike the digest Check verifies, it is never
// taken from a cache: digest pinning must see a tag that moved a moment ago.
// Concurrent resolutions of one tag with equal credentials share one
// request; registry limits, retries and credentials are Check's. Errors are
// *UnverifiableError.
func (v *Verifier) Resolve(ctx context.Context, creds Credentials, img workload.Image) (string, error) {
	if img.Err != nil {
		return "", &UnverifiableError{Reason: "invalid image reference: " + img.Err.Error(), Err: img.Err}
	}
	if img.Digest != "" {
		return img.Digest, nil
	}
	ref, err := parse(img.Ref, v.opts.insecure)
	if err != nil {
		return "", &UnverifiableError{Reason: "invalid image reference: " + err.Error(), Err: err}
	}
	led := false
	// The flight runs on its leader's context, as the verification cache's
	// do; a joiner whose deadline comes first leaves without waiting.
	ch := v.resolutions.DoChan(ref.Name()+"\x00"+creds.ID, func() (any, error) {
		led = true
		d, err := v.head(ctx, v.pullerFor(creds), ref)
		if err != nil {
			v.fetchFailed(creds)
		}
		return d, err
	})
	select {
	case r := <-ch:
		status := cacheJoin
		if led {
			status = cacheMiss
		}
		v.metrics.cache.WithLabelValues("resolve", status).Inc()
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		v.metrics.cache.WithLabelValues("resolve", cacheJoin).Inc()
		return "", registryError("resolving the tag", ctx.Err())
	}
}
