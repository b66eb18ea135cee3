package scan

import (
	"fmt"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/workload"
)

// Record is one imported scan of one image.
type Record struct {
	// Digest is the image digest (sha256:...), the key scans are found by.
	Digest string `json:"digest,omitempty"`
	// Ref is the canonical repository:tag, used only for images that name no
	// digest.
	Ref  string     `json:"ref,omitempty"`
	Scan facts.Scan `json:"scan"`
}

// keys are where a record is stored: under its digest and under its tag, so
// a pod naming the image by tag finds it too (a later report for the tag
// replaces it).
func (r *Record) keys() ([]string, error) {
	var ks []string
	if r.Digest != "" {
		ks = append(ks, "d:"+r.Digest)
	}
	if r.Ref != "" {
		ks = append(ks, "r:"+r.Ref)
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("the report names no image digest and no image reference")
	}
	return ks, nil
}

// keyFor is where an image's scan would be stored.
func keyFor(img workload.Image, digest string) []string {
	var keys []string
	if img.Digest != "" {
		keys = append(keys, "d:"+img.Digest)
	} else if digest != "" {
		keys = append(keys, "d:"+digest)
	}
	if img.Digest == "" && img.Canonical != "" {
		keys = append(keys, "r:"+img.Canonical)
	}
	return keys
}

// canonicalRef normalizes a repository:tag as workload does.
func canonicalRef(ref string) string {
	img := workload.ParseImage(ref)
	if img.Err != nil {
		return ""
	}
	return img.Canonical
}

func scannedAt(t string, fallback time.Time) time.Time {
	if at, ok := reportTime(t); ok {
		return at
	}
	return fallback.UTC()
}

// reportTime is a report's own RFC 3339 time, if it has one.
func reportTime(t string) (time.Time, bool) {
	if t != "" {
		if parsed, err := time.Parse(time.RFC3339Nano, t); err == nil {
			return parsed.UTC(), true
		}
	}
	return time.Time{}, false
}

func unixNano(n int64) time.Time { return time.Unix(0, n).UTC() }
