package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/imagegate/imagegate/scan"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// VulnerabilityReportGVR is trivy-operator's VulnerabilityReport resource.
var VulnerabilityReportGVR = schema.GroupVersionResource{Group: "aquasecurity.github.io", Version: "v1alpha1", Resource: "vulnerabilityreports"}

// ReportImporter stores scan records, e.g. scan.Import into the scan store
// followed by a refresh of the reader serving facts.
type ReportImporter func(records []*scan.Record) error

// WatchVulnerabilityReports imports every trivy-operator VulnerabilityReport
// of the cluster, and each new or changed one, with the parser `imagegate
// scan import` uses. Reports arriving together are imported in one batch.
// A deleted report leaves its scan in the store: trivy-operator deletes
// reports when workloads go away, which does not make the image unscanned.
// Reports that do not parse are logged and skipped. It blocks until ctx ends
// and never holds up readiness: without trivy-operator there is simply
// nothing to import.
func WatchVulnerabilityReports(ctx context.Context, client dynamic.Interface, importer ReportImporter, log *slog.Logger) {
	factory := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
	pending := make(chan *unstructured.Unstructured, 1024)
	enqueue := func(obj any) {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			select {
			case pending <- u:
			case <-ctx.Done():
			}
		}
	}
	inf := factory.ForResource(VulnerabilityReportGVR).Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		log.Error("VulnerabilityReports not watched", "error", err.Error())
		return
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	imported := map[types.UID]string{} // uid -> resourceVersion imported
	for {
		var batch []*unstructured.Unstructured
		select {
		case <-ctx.Done():
			return
		case u := <-pending:
			batch = append(batch, u)
		}
		// Gather what else arrives meanwhile: the initial list comes as a burst.
		deadline := time.After(100 * time.Millisecond)
	gather:
		for len(batch) < 500 {
			select {
			case u := <-pending:
				batch = append(batch, u)
			case <-deadline:
				break gather
			}
		}
		var records []*scan.Record
		var done []*unstructured.Unstructured
		for _, u := range batch {
			if imported[u.GetUID()] == u.GetResourceVersion() {
				continue
			}
			rec, err := parseReport(u)
			if err != nil {
				log.Warn("VulnerabilityReport not imported", "namespace", u.GetNamespace(), "name", u.GetName(), "error", err.Error())
				imported[u.GetUID()] = u.GetResourceVersion()
				continue
			}
			records = append(records, rec)
			done = append(done, u)
		}
		if len(records) == 0 {
			continue
		}
		if err := importer(records); err != nil {
			log.Error("VulnerabilityReports not imported; retried on their next change", "reports", len(records), "error", err.Error())
			continue
		}
		for _, u := range done {
			imported[u.GetUID()] = u.GetResourceVersion()
		}
		log.Debug("VulnerabilityReports imported", "reports", len(records))
	}
}

func parseReport(u *unstructured.Unstructured) (*scan.Record, error) {
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	rec, err := scan.ParseVulnerabilityReport(data, time.Now())
	if err != nil {
		return nil, fmt.Errorf("VulnerabilityReport %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return rec, nil
}
