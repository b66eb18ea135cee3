package webhook

import (
	"encoding/json"

	"github.com/imagegate/imagegate/internal/jsonscan"
	"github.com/imagegate/imagegate/workload"
)

// The JSON names of review's types, for the one-pass reader.
var (
	reviewKeys   = []string{"apiVersion", "kind", "request", "response"}
	requestKeys  = []string{"uid", "kind", "resource", "subResource", "name", "namespace", "operation", "userInfo", "object", "oldObject", "dryRun"}
	gvkKeys      = []string{"group", "version", "kind"}
	gvrKeys      = []string{"group", "version", "resource"}
	userInfoKeys = []string{"username", "groups"}
)

// scanReview reads an AdmissionReview in one pass, leaving the object and
// old object as raw bytes of the body (encoding/json validates the whole
// body, then walks it again and copies both). ok is false for anything the
// one-pass reader leaves to encoding/json (see internal/jsonscan): a review
// with a response, a null request, or whatever encoding/json might read
// differently.
//
// When eager (if not nil) says so for the request read so far, the object is
// also read as a workload in the same pass (request.decoded).
func scanReview(body []byte, eager func(*request) bool) (*review, bool) {
	s := jsonscan.New(body)
	r := &review{}
	s.Fields(reviewKeys, func(i int) {
		switch i {
		case 0:
			r.APIVersion = known(s)
		case 1:
			r.Kind = known(s)
		case 2:
			r.Request = scanRequest(s, eager)
		case 3:
			s.Fail()
		}
	})
	if !s.End() {
		return nil, false
	}
	return r, true
}

func scanRequest(s *jsonscan.Scanner, eager func(*request) bool) *request {
	req := &request{}
	s.Fields(requestKeys, func(i int) {
		switch i {
		case 0:
			req.UID = s.String()
		case 1:
			s.Fields(gvkKeys, func(i int) {
				switch i {
				case 0:
					req.Kind.Group = known(s)
				case 1:
					req.Kind.Version = known(s)
				case 2:
					req.Kind.Kind = known(s)
				}
			})
		case 2:
			s.Fields(gvrKeys, func(i int) {
				switch i {
				case 0:
					req.Resource.Group = known(s)
				case 1:
					req.Resource.Version = known(s)
				case 2:
					req.Resource.Resource = known(s)
				}
			})
		case 3:
			req.SubResource = known(s)
		case 4:
			req.Name = s.String()
		case 5:
			req.Namespace = s.String()
		case 6:
			req.Operation = known(s)
		case 7:
			s.Fields(userInfoKeys, func(i int) {
				if i == 0 {
					req.UserInfo.Username = s.String()
				} else {
					req.UserInfo.Groups = s.Strings()
				}
			})
		case 8:
			if eager == nil || !eager(req) {
				req.Object = json.RawMessage(s.Raw())
				break
			}
			var obj *workload.Object
			raw, ok := s.RawTry(func() { obj = workload.ScanAs(s, req.Kind.Kind) })
			req.Object = json.RawMessage(raw)
			if ok {
				req.decoded = obj
			}
		case 9:
			req.OldObject = json.RawMessage(s.Raw())
		case 10:
			if !s.IsNull() {
				b := s.Bool()
				req.DryRun = &b
			}
		}
	})
	return req
}

// known reads a string that is usually one of a few constants, returning
// the constant instead of a new string.
func known(s *jsonscan.Scanner) string {
	b := s.Bytes()
	switch string(b) {
	case "":
		return ""
	case reviewAPIVersion:
		return reviewAPIVersion
	case reviewKind:
		return reviewKind
	case "v1":
		return "v1"
	case "apps":
		return "apps"
	case "batch":
		return "batch"
	case "CREATE":
		return "CREATE"
	case "UPDATE":
		return "UPDATE"
	case "Pod":
		return "Pod"
	case "pods":
		return "pods"
	case "Deployment":
		return "Deployment"
	case "deployments":
		return "deployments"
	case "ephemeralcontainers":
		return "ephemeralcontainers"
	}
	return string(b)
}
