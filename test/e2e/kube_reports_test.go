package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// vulnReportCRD is a minimal stand-in for trivy-operator's CRD: the same
// group, version and names, with an open schema.
const vulnReportCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: vulnerabilityreports.aquasecurity.github.io}
spec:
  group: aquasecurity.github.io
  scope: Namespaced
  names: {kind: VulnerabilityReport, listKind: VulnerabilityReportList, plural: vulnerabilityreports, singular: vulnerabilityreport}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

const vulnStrategy = `apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: kube-vuln}
spec:
  strategyId: 9201
  strategyName: kube-vuln
  ruleAction: 2
  imageName: [report-app]
  alarmDetail: {vul: {riskLevel: [high]}}
  scopes: [{clusterId: e2e-cluster, allNamespace: 1}]
`

const vulnReport = `apiVersion: aquasecurity.github.io/v1alpha1
kind: VulnerabilityReport
metadata: {name: replicaset-report-app-app}
report:
  updateTimestamp: "2026-11-22T08:00:00Z"
  registry: {server: "127.0.0.1:5000"}
  artifact: {repository: report-app, tag: "1.0"}
  scanner: {name: Trivy, vendor: Aqua Security, version: 0.50.0}
  vulnerabilities:
  - {vulnerabilityID: CVE-2024-7777, resource: openssl, installedVersion: "3.0", severity: CRITICAL, title: openssl overflow}
`

// TestKubeVulnerabilityReports: with --kube-vulnerability-reports a
// trivy-operator VulnerabilityReport created in the cluster becomes the
// image's scan facts: an image a strategy blocks for high vulnerabilities
// is admitted before the report and denied after it.
func TestKubeVulnerabilityReports(t *testing.T) {
	cluster := harness.SharedCluster(t)
	ctx := context.Background()
	dyn := cluster.ApplyPolicies(t, vulnStrategy)
	if _, err := dyn.Resource(harness.CRDs).Create(ctx, harness.DecodeYAML(t, vulnReportCRD), metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "VulnerabilityReport CRD established", func() (bool, error) {
		u, err := dyn.Resource(harness.CRDs).Get(ctx, "vulnerabilityreports.aquasecurity.github.io", metav1.GetOptions{})
		return err == nil && conditionStatus(u, "Established") == "True", err
	})

	store := filepath.Join(t.TempDir(), "scans.db")
	ig := harness.StartImagegate(t, "--policy-source=kube", "--kubeconfig", cluster.Kubeconfig, "--cluster-id", clusterID,
		"--scan-store", store, "--kube-vulnerability-reports")
	client := cluster.Client(t)
	ns := createNamespace(t, client, "kube-reports")
	const image = "127.0.0.1:5000/report-app:1.0"
	if !allowedBy(t, ig, ns, image) {
		t.Fatalf("%s denied before any report exists", image)
	}
	reports := dyn.Resource(schema.GroupVersionResource{Group: "aquasecurity.github.io", Version: "v1alpha1", Resource: "vulnerabilityreports"}).Namespace(ns)
	if _, err := reports.Create(ctx, harness.DecodeYAML(t, vulnReport), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create VulnerabilityReport: %v", err)
	}
	took := waitFor(t, 5*time.Second, image+" denied after its report", func() (bool, error) {
		return !allowedBy(t, ig, ns, image), nil
	})
	t.Logf("MEASURED: VulnerabilityReport in force %s after it was created", took.Round(time.Millisecond))
}
