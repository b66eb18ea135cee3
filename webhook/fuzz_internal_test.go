package webhook

import (
	"testing"
)

// FuzzReview: any body decodes into a review with a request and a UID, or
// is refused as malformed; a decoded request yields a workload, a reason to
// skip it, or an error, never a panic. (FuzzHandler drives the whole
// handler, Rego included, at a much lower rate.)
func FuzzReview(f *testing.F) {
	for _, s := range []string{
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","namespace":"ns","object":{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"a:1"}],"initContainers":[{"image":"b@sha256:00"}]}}}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Deployment"},"operation":"UPDATE","object":{"spec":{"template":{"spec":{"containers":[{"image":"a:2"}]}}}},"oldObject":{"spec":{"template":{"spec":{"containers":[{"image":"a:1"}]}}}}}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"CronJob"},"operation":"CREATE","object":{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"ephemeralContainers":[{"image":"x"}]}}}}}}}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"subResource":"ephemeralcontainers","operation":"UPDATE","object":null}}`,
		`{"request":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rv, err := decodeReview(body, func(*request) bool { return true })
		if err != nil {
			return
		}
		if rv.Request == nil || rv.Request.UID == "" {
			t.Fatal("decoded a review without a request UID")
		}
		obj, skip, err := extract(rv.Request)
		switch {
		case err != nil || skip != "":
		case obj == nil:
			t.Fatal("no workload, no reason to skip and no error")
		default:
			for _, img := range obj.Images {
				if img.Err == nil && img.Canonical == "" {
					t.Fatalf("image %q without a canonical name", img.Ref)
				}
			}
		}
	})
}
