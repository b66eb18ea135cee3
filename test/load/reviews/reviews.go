// Package reviews builds the AdmissionReviews that test/load posts and that
// the webhook's benchmarks decide, so both measure the same requests.
//
// Every pod has three containers with 20 environment variables each (about
// 5.6 KB of JSON, as real pods carry) and two labels. Against the policies
// and facts in test/load/testdata (10 strategies: one alerts on the label
// tier=canary, one allows registry.example.com/tools/* by name):
//
//   - Repeated: the same pod every time (the decision cache answers);
//     allowed without warnings, the debug image allowed by name.
//   - Distinct: that pod in a namespace of its own per request, so no
//     decision repeats.
//   - Alert: the pod labelled tier=canary: allowed with warnings.
//   - Deny: an image with a high CVE instead of one of the three: denied.
package reviews

import (
	"bytes"
	"fmt"
	"strconv"
)

// Shape names one kind of request.
type Shape string

// The shapes; see the package comment.
const (
	Repeated Shape = "repeated"
	Distinct Shape = "distinct"
	Alert    Shape = "alert"
	Deny     Shape = "deny"
)

// Shapes lists every shape.
var Shapes = []Shape{Repeated, Distinct, Alert, Deny}

// Images of the repeated pod; Deny swaps the second for Legacy.
var (
	Images = []string{"registry.example.com/team/app:1.0", "registry.example.com/team/api:2.0", "registry.example.com/tools/debug:1.0"}
	Legacy = "registry.example.com/team/legacy:2.3"
)

// Review returns the n-th AdmissionReview of shape s in namespace ns (Distinct
// appends -n to it). The uid and pod name carry n; the decision does not
// depend on them.
func Review(s Shape, n int64, ns string) []byte {
	return ReviewOf(s, n, ns, nil)
}

// ReviewOf is Review with other images (nil: the shape's own).
func ReviewOf(s Shape, n int64, ns string, images []string) []byte {
	tier := "frontend"
	switch s {
	case Distinct:
		ns += "-" + strconv.FormatInt(n, 10)
	case Alert:
		tier = "canary"
	}
	if images == nil {
		images = Images
		if s == Deny {
			images = []string{Images[0], Legacy, Images[2]}
		}
	}
	var b bytes.Buffer
	b.Grow(6 << 10)
	fmt.Fprintf(&b, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"load-%d","kind":{"group":"","version":"v1","kind":"Pod"},`+
		`"resource":{"group":"","version":"v1","resource":"pods"},"namespace":%q,"operation":"CREATE","userInfo":{"username":"load"},`+
		`"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p-%d","namespace":%q,"labels":{"app":"web","tier":%q}},"spec":{"containers":[`,
		n, ns, n, ns, tier)
	for i, img := range images {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"c%d","image":%q,"env":[`, i, img)
		for e := range 20 {
			if e > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"SETTING_%02d","value":"https://service-%02d.internal.example.com:8443/api/v1"}`, e, e)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}}}}`)
	return b.Bytes()
}
