// Package webhook answers the Kubernetes API server's admission calls:
// AdmissionReview v1 at POST /validate. It extracts the workload, decides it
// with an admission.Decider within the request's deadline, and maps the
// decision (or the reason no decision could be made) onto the response in
// one place. It never panics out of a request and fails closed unless told
// otherwise.
package webhook
