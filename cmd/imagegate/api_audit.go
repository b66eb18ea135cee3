package main

import (
	"github.com/imagegate/imagegate/api"
	"github.com/imagegate/imagegate/audit"
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
