package main

import (
	"github.com/imagegate/imagegate/api"
	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/scan"
)

// apiAuditor feeds management API calls to the audit recorder; nil when
// there is no recorder or no sink that keeps API calls (the file and the
// store: Kubernetes Events and PolicyReports are about workloads).
func (f *auditFlags) apiAuditor() func(api.Event) {
	if f.recorder == nil || (f.log == "" && f.store == "") {
		return nil
	}
	rec := f.recorder
	return func(ev api.Event) {
		rec.RecordAPICall(audit.APICall(ev))
	}
}

// recordScanCall records a call of the scan endpoints (imports and cleared
// malicious marks) as an API call event; nothing without a sink that keeps
// them. The recorder is looked up per call: the endpoints are built before
// the audit pipeline starts, and called only after.
func (f *auditFlags) recordScanCall(c scan.Call) {
	if f.recorder == nil || (f.log == "" && f.store == "") {
		return
	}
	f.recorder.RecordAPICall(audit.APICall{Time: c.Time, RequestID: c.RequestID, Principal: c.Principal, Action: c.Action,
		Resource: c.Resource, Allowed: c.Allowed, Decision: c.Decision, Statement: -1, SourceIP: c.SourceIP,
		Status: c.Status, Code: c.Code})
}
