// Package compliance keeps deciding what already runs: the workloads of
// the inventory are decided with the admission Decider (the same engine and
// facts, signatures through the same caches), and decided again — only the
// affected ones — when the policy snapshot, an attestor, a scan record, the
// malicious feed or the passing of time (a scan ageing past --max-scan-age)
// changes. What changed is reported through Sinks: PolicyReports, Kubernetes
// Events on the owning controller, runtime audit events, an annotation on
// violating pods; GET /api/v1/workloads answers the current state.
package compliance
