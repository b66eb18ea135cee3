package webhook

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/imagegate/imagegate/workload"
)

// The admission.k8s.io/v1 AdmissionReview, reduced to the fields imagegate
// reads and writes; decoding only these keeps the hot path cheap.
type review struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Request    *request  `json:"request,omitempty"`
	Response   *response `json:"response,omitempty"`
}

type groupVersionKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

type groupVersionResource struct {
	Group    string `json:"group"`
	Version  string `json:"version"`
	Resource string `json:"resource"`
}

type userInfo struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups,omitempty"`
}

type request struct {
	UID         string               `json:"uid"`
	Kind        groupVersionKind     `json:"kind"`
	Resource    groupVersionResource `json:"resource"`
	SubResource string               `json:"subResource,omitempty"`
	Name        string               `json:"name,omitempty"`
	Namespace   string               `json:"namespace,omitempty"`
	Operation   string               `json:"operation"`
	UserInfo    userInfo             `json:"userInfo"`
	Object      json.RawMessage      `json:"object,omitempty"`
	OldObject   json.RawMessage      `json:"oldObject,omitempty"`
	DryRun      *bool                `json:"dryRun,omitempty"`

	caller caller // who sent it: not part of the review
	// decoded is Object as workload.DecodeAs decodes it, when it was read
	// with the review (scanReview); not part of the review.
	decoded *workload.Object
}

type status struct {
	Code    int32  `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

type response struct {
	UID              string            `json:"uid"`
	Allowed          bool              `json:"allowed"`
	Result           *status           `json:"status,omitempty"`
	Warnings         []string          `json:"warnings,omitempty"`
	AuditAnnotations map[string]string `json:"auditAnnotations,omitempty"`
	// A mutating webhook's changes: a JSON patch (RFC 6902), base64 in JSON.
	PatchType string `json:"patchType,omitempty"`
	Patch     []byte `json:"patch,omitempty"`
}

const (
	reviewAPIVersion = "admission.k8s.io/v1"
	reviewKind       = "AdmissionReview"
)

// errMalformed marks reviews that cannot be answered at all (HTTP 400).
var errMalformed = errors.New("malformed AdmissionReview")

// eager (may be nil) is scanReview's.
func decodeReview(body []byte, eager func(*request) bool) (*review, error) {
	r, ok := scanReview(body, eager)
	if !ok {
		r = &review{}
		if err := json.Unmarshal(body, r); err != nil {
			return nil, fmt.Errorf("%w: %v", errMalformed, err)
		}
	}
	switch {
	case r.APIVersion != reviewAPIVersion || r.Kind != reviewKind:
		return nil, fmt.Errorf("%w: expected apiVersion %s and kind %s, got %q and %q", errMalformed, reviewAPIVersion, reviewKind, r.APIVersion, r.Kind)
	case r.Request == nil:
		return nil, fmt.Errorf("%w: request is missing", errMalformed)
	case r.Request.UID == "":
		return nil, fmt.Errorf("%w: request.uid is missing", errMalformed)
	}
	return r, nil
}
