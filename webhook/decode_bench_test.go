package webhook

import (
	"testing"

	"github.com/imagegate/imagegate/test/load/reviews"
)

// BenchmarkDecode reads test/load's repeated review and its workload: in
// two passes (the review, then the object) and in one.
func BenchmarkDecode(b *testing.B) {
	body := reviews.Review(reviews.Repeated, 1, "default")
	h := &Handler{}
	for _, c := range []struct {
		name  string
		eager func(*request) bool
	}{{"passes=2", nil}, {"passes=1", h.decodesWorkload}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for range b.N {
				rv, err := decodeReview(body, c.eager)
				if err != nil {
					b.Fatal(err)
				}
				if _, skip, err := extract(rv.Request); err != nil || skip != "" {
					b.Fatal(err, skip)
				}
			}
		})
	}
}
