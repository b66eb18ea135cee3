package kube

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/imagegate/imagegate/policy"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ValidationPath is where the API server sends imagegate.dev resources for
// validation (a second webhook of the ValidatingWebhookConfiguration).
const ValidationPath = "/validate-policy"

// maxPolicyReview bounds the AdmissionReview a policy check reads: a policy
// object is a few KB; managed fields and annotations add some.
const maxPolicyReview = 3 << 20

// AttestorLookup tells whether an Attestor exists; the watcher's cache
// answers it, so a policy naming a missing attestor gets a warning at apply.
type AttestorLookup func(name string) bool

// ValidationHandler answers AdmissionReviews for imagegate's own resources
// with the policy decoder and validation that files get, so an object that
// would not load is refused at kubectl apply with its field paths. Rules
// that need other objects (attestors exist, strategy ids unique) are not
// refused here: objects may be applied in any order. They show in status.
type ValidationHandler struct {
	// Attestors, when set, adds a warning for unknown required attestors.
	Attestors AttestorLookup
}

var _ http.Handler = (*ValidationHandler)(nil)

func (h *ValidationHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPolicyReview+1))
	if err != nil || len(body) > maxPolicyReview {
		http.Error(w, fmt.Sprintf("AdmissionReview unreadable or larger than %d bytes", maxPolicyReview), http.StatusRequestEntityTooLarge)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "expected an admission.k8s.io/v1 AdmissionReview with a request", http.StatusBadRequest)
		return
	}
	resp := h.review(review.Request)
	resp.UID = review.Request.UID
	out := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (h *ValidationHandler) review(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Operation == admissionv1.Delete || req.Operation == admissionv1.Connect || req.SubResource != "" {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	deny := func(msg string) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid, Message: msg,
		}}
	}
	obj, err := decodeOne(req.Object.Raw)
	if err != nil {
		return deny("imagegate refused this policy object:\n" + strings.Join(errorLines(err), "\n"))
	}
	resp := &admissionv1.AdmissionResponse{Allowed: true}
	if bp, ok := obj.(*policy.BinarySecurityPolicy); ok && h.Attestors != nil {
		for i, name := range bp.Spec.Policy.RequiredAttestors {
			if !h.Attestors(name) {
				resp.Warnings = append(resp.Warnings, fmt.Sprintf("spec.policy.requiredAttestors[%d]: no Attestor %q exists yet; "+
					"the policy set will not load until it does (see this object's status)", i, name))
			}
		}
	}
	return resp
}
