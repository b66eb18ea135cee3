package webhook

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/imagegate/imagegate/test/load/reviews"
	"github.com/imagegate/imagegate/workload"
)

var reviewScanCases = []string{
	string(reviews.Review(reviews.Repeated, 1, "default")),
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},"requestKind":{"group":"apps","version":"v1","kind":"Deployment"},"name":"d","namespace":"n","operation":"UPDATE","userInfo":{"username":"system:admin","uid":"x","groups":["system:masters","system:authenticated"],"extra":{"a":["b"]}},"object":{"kind":"Deployment"},"oldObject":null,"dryRun":false,"options":{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1"}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","userInfo":{"groups":[]},"dryRun":true,"object":{"a":[1,-0.5e+2,true,null,"\"\\\/\b\f\n\r\t\u00e9"]}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","userInfo":{"groups":null},"dryRun":null}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","Request":{"uid":"u"}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"},"request":{"name":"n"}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u\u0041"}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"},"response":{"uid":"u","allowed":true}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"x":1,}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"}}{}`,
	`{"apiVersion":1}`,
	``,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","object":{"kind":"Pod","spec":{"containers":[{"image":"a\u0062"}]}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","object":{"kind":"Deployment","spec":{}}}}`,
	`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Deployment"},"operation":"CREATE","object":{"kind":"Deployment","spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}}}`,
}

// TestScanReviewAgreesWithJSON: what the one-pass reader returns is what
// encoding/json decodes, and it reads the reviews the API server sends.
func TestScanReviewAgreesWithJSON(t *testing.T) {
	for i, c := range reviewScanCases {
		if ok := checkScanReview(t, []byte(c)); !ok && i < 4 {
			t.Errorf("case %d not read in one pass: %s", i, c)
		}
	}
}

func checkScanReview(t *testing.T, body []byte) bool {
	t.Helper()
	got, ok := scanReview(body, nil)
	if !ok {
		return false
	}
	var want review
	if err := json.Unmarshal(body, &want); err != nil {
		t.Errorf("read in one pass, but encoding/json refuses it (%v): %q", err, body)
		return true
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("%q:\none pass      %+v\nencoding/json %+v", body, *got, want)
	}
	// Reading the workload with the review changes nothing else, and reads
	// what DecodeAs decodes.
	always := func(req *request) bool { return workload.IsWorkload(req.Kind.Kind) }
	eager, ok := scanReview(body, always)
	if !ok {
		t.Errorf("%q: read in one pass, but not when reading the workload too", body)
		return true
	}
	if eager.Request != nil && eager.Request.decoded != nil {
		dec := eager.Request.decoded
		obj, err := workload.DecodeAs(eager.Request.Kind.Kind, eager.Request.Object)
		if err != nil || !reflect.DeepEqual(dec, obj) {
			t.Errorf("%q: workload read with the review %+v, DecodeAs %+v (%v)", body, dec, obj, err)
		}
		eager.Request.decoded = nil
	}
	if !reflect.DeepEqual(*eager, want) {
		t.Errorf("%q:\none pass with the workload %+v\nencoding/json %+v", body, *eager, want)
	}
	return true
}

func FuzzScanReview(f *testing.F) {
	for _, c := range reviewScanCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkScanReview(t, body) })
}
