package scan

import (
	"context"

	"github.com/imagegate/imagegate/facts"
)

// Source is a facts.Source of scan facts from an Index. Images without a
// scan are unscanned; a digest in a malicious feed marks its image malicious
// whether or not it was scanned.
type Source struct{ idx *Index }

var _ facts.Source = Source{}

// NewSource answers from idx.
func NewSource(idx *Index) Source { return Source{idx: idx} }

// Facts looks every image up; an image whose scan cannot be known (evicted
// and the store unreadable) fails the request rather than pass as
// unscanned.
func (s Source) Facts(ctx context.Context, req facts.Request) ([]*facts.Image, error) {
	out := make([]*facts.Image, len(req.Images))
	for i, img := range req.Images {
		scan, reason, err := s.idx.Find(ctx, img, "")
		if err != nil {
			return nil, err
		}
		out[i] = &facts.Image{Scan: scan, Malicious: reason != ""}
		if reason != "" {
			out[i].MaliciousReason = reason
		}
	}
	return out, nil
}
