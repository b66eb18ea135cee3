package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/test/e2e/harness"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// clusterID is the --cluster-id of every imagegate the tests start.
const clusterID = "e2e-cluster"

// strategies are the OpaStrategy objects of the webhook tests, all scoped
// to every namespace of e2e-cluster:
//   - 9001 blocks unscanned images named blocked-*;
//   - 9002 alerts on unscanned images named alerted-*;
//   - 9003 blocks any image with a high vulnerability;
//   - 9004 allows images named blocked-* in pods labelled
//     app.kubernetes.io/part-of=debug (no criteria: it hits what it targets).
const strategies = `apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: e2e-block}
spec:
  strategyId: 9001
  strategyName: e2e-block
  clusterId: e2e-cluster
  unScanedImage: true
  ruleAction: 2
  imageName: ["blocked-*"]
  scopes: [{clusterId: e2e-cluster, allNamespace: 1}]
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: e2e-alert}
spec:
  strategyId: 9002
  strategyName: e2e-alert
  clusterId: e2e-cluster
  unScanedImage: true
  ruleAction: 1
  imageName: ["alerted-*"]
  scopes: [{clusterId: e2e-cluster, allNamespace: 1}]
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: e2e-block-high-vulns}
spec:
  strategyId: 9003
  strategyName: e2e-block-high-vulns
  clusterId: e2e-cluster
  ruleAction: 2
  alarmDetail:
    vul: {riskLevel: [high]}
  scopes: [{clusterId: e2e-cluster, allNamespace: 1}]
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: e2e-allow-debug}
spec:
  strategyId: 9004
  strategyName: e2e-allow-debug
  clusterId: e2e-cluster
  ruleAction: 3
  imageName: ["blocked-*"]
  label: ["app.kubernetes.io/part-of:debug"]
  scopes: [{clusterId: e2e-cluster, allNamespace: 1}]
`

// facts are the scan facts of the webhook tests. The images
// need not exist: imagegate takes every fact from this file.
const facts = `images:
  "127.0.0.1:5000/good-app:1.0":
    scan:
      scannedAt: "2026-11-01T00:00:00Z"
      malicious: false
      findings:
      - {category: Vul, id: CVE-2024-0001, level: low, class: cve}
  "127.0.0.1:5000/vuln-app:1.0":
    scan:
      scannedAt: "2026-11-01T00:00:00Z"
      malicious: false
      findings:
      - {category: Vul, id: CVE-2024-3094, level: high, class: cve}
`

const (
	goodImage    = "127.0.0.1:5000/good-app:1.0"
	vulnImage    = "127.0.0.1:5000/vuln-app:1.0"
	blockedImage = "127.0.0.1:5000/blocked-app:1.0" // unscanned
	alertedImage = "127.0.0.1:5000/alerted-app:1.0" // unscanned

	blockedMsg = `blocked by strategy 9001 "e2e-block"`
	alertedMsg = `alerted by strategy 9002 "e2e-alert"`
	vulnMsg    = `blocked by strategy 9003 "e2e-block-high-vulns"`
	// deniedBy starts the API server's message for a webhook's denial.
	deniedBy = `admission webhook "` + harness.WebhookName + `" denied the request`
)

// gate is an imagegate registered as the shared cluster's webhook.
type gate struct {
	*harness.Imagegate
	cluster  *harness.Cluster
	client   kubernetes.Interface // records warnings in warnings
	warnings *harness.WarningRecorder
	ns       string // a fresh namespace for the test
	// policyDir is imagegate's --policies directory (the management API
	// writes there).
	policyDir string
}

// startGate runs imagegate serve with policies (YAML, written to a
// directory) and, unless factsYAML is empty, --facts, registers it as the
// webhook of the shared cluster and makes a namespace for the test.
func startGate(t *testing.T, policies, factsYAML string, extraArgs ...string) *gate {
	t.Helper()
	cluster := harness.SharedCluster(t)
	dir := t.TempDir()
	policyDir := filepath.Join(dir, "policies")
	writeFile(t, policyDir, "policies.yaml", policies)
	args := []string{"--policies", policyDir, "--cluster-id", clusterID}
	if factsYAML != "" {
		args = append(args, "--facts", writeFile(t, dir, "facts.yaml", factsYAML))
	}
	ig := harness.StartImagegate(t, append(args, extraArgs...)...)
	harness.RegisterWebhook(t, cluster.Config, ig.URL, ig.CAPEM)
	cfg, warnings := harness.ConfigWithWarnings(cluster.Config)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &gate{Imagegate: ig, cluster: cluster, client: client, warnings: warnings, policyDir: policyDir,
		ns: createNamespace(t, cluster.Client(t), strings.ToLower(strings.TrimPrefix(t.Name(), "Test")))}
}

// mustDeny checks that err is the webhook's denial holding every want.
func mustDeny(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: admitted, want denied by imagegate", what)
	}
	msg := err.Error()
	if !strings.Contains(msg, deniedBy) {
		t.Fatalf("%s: error %q is not imagegate's denial (%s)", what, msg, deniedBy)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: denial %q does not say %q", what, msg, w)
		}
	}
	t.Logf("%s: denied: %s", what, msg)
}

func hasWarning(warnings []string, want string) bool {
	for _, w := range warnings {
		if strings.Contains(w, want) {
			return true
		}
	}
	return false
}

// TestWebhookPods: blocked images are refused with imagegate's message,
// clean ones admitted, alerted ones admitted with a warning the client
// sees, an allow strategy cancels a block, and kube-system is untouched.
func TestWebhookPods(t *testing.T) {
	g := startGate(t, strategies, facts)
	ctx := context.Background()
	pods := g.client.CoreV1().Pods(g.ns)

	t.Run("blocked image refused", func(t *testing.T) {
		_, err := pods.Create(ctx, pod("blocked", blockedImage, nil), metav1.CreateOptions{})
		mustDeny(t, "pod with "+blockedImage, err, blockedMsg, blockedImage)
		if _, err := pods.Get(ctx, "blocked", metav1.GetOptions{}); err == nil {
			t.Errorf("the refused pod exists")
		}
	})

	t.Run("high vulnerability refused", func(t *testing.T) {
		_, err := pods.Create(ctx, pod("vuln", vulnImage, nil), metav1.CreateOptions{})
		mustDeny(t, "pod with "+vulnImage, err, vulnMsg, "CVE-2024-3094")
	})

	t.Run("allowed image created", func(t *testing.T) {
		g.warnings.Take()
		if _, err := pods.Create(ctx, pod("good", goodImage, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod with %s: %v", goodImage, err)
		}
		if w := g.warnings.Take(); len(w) > 0 {
			t.Errorf("warnings for a clean image: %q", w)
		}
	})

	t.Run("alerted image created with a warning", func(t *testing.T) {
		g.warnings.Take()
		if _, err := pods.Create(ctx, pod("alerted", alertedImage, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod with %s: %v", alertedImage, err)
		}
		w := g.warnings.Take()
		if !hasWarning(w, alertedMsg) {
			t.Fatalf("warnings %q: none says %q", w, alertedMsg)
		}
		t.Logf("warnings: %q", w)
	})

	t.Run("allow strategy cancels the block", func(t *testing.T) {
		labels := map[string]string{"app.kubernetes.io/part-of": "debug"}
		if _, err := pods.Create(ctx, pod("debug", blockedImage, labels), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod with %s labelled part-of=debug: %v", blockedImage, err)
		}
	})

	t.Run("one blocked container refuses the pod", func(t *testing.T) {
		p := pod("mixed", goodImage, nil)
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: blockedImage}}
		_, err := pods.Create(ctx, p, metav1.CreateOptions{})
		mustDeny(t, "pod with a blocked init container", err, blockedMsg)
	})

	t.Run("kube-system untouched", func(t *testing.T) {
		sys := g.cluster.Client(t).CoreV1().Pods(metav1.NamespaceSystem)
		if _, err := sys.Create(ctx, pod("imagegate-e2e-blocked", blockedImage, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod with %s in kube-system: %v", blockedImage, err)
		}
		t.Cleanup(func() {
			_ = sys.Delete(context.Background(), "imagegate-e2e-blocked", metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		})
	})
}

// TestWebhookPodUpdates: UPDATE is validated too, for the pod and for its
// ephemeral containers.
func TestWebhookPodUpdates(t *testing.T) {
	g := startGate(t, strategies, facts)
	ctx := context.Background()
	pods := g.client.CoreV1().Pods(g.ns)
	if _, err := pods.Create(ctx, pod("web", goodImage, nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}

	t.Run("image changed to a blocked one", func(t *testing.T) {
		p, err := pods.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Spec.Containers[0].Image = blockedImage
		_, err = pods.Update(ctx, p, metav1.UpdateOptions{})
		mustDeny(t, "update to "+blockedImage, err, blockedMsg)
	})

	// addDebugger adds an ephemeral container running image to pod web.
	addDebugger := func(t *testing.T, image string) error {
		t.Helper()
		p, err := pods.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: image},
		})
		_, err = pods.UpdateEphemeralContainers(ctx, "web", p, metav1.UpdateOptions{})
		return err
	}

	t.Run("blocked ephemeral container", func(t *testing.T) {
		mustDeny(t, "ephemeral container "+blockedImage, addDebugger(t, blockedImage), blockedMsg)
	})

	t.Run("clean ephemeral container", func(t *testing.T) {
		if err := addDebugger(t, goodImage); err != nil {
			t.Fatalf("ephemeral container %s: %v", goodImage, err)
		}
	})
}

func deployment(name, image string, labels map[string]string) *appsv1.Deployment {
	sel := map[string]string{"app": name}
	podLabels := map[string]string{"app": name}
	for k, v := range labels {
		podLabels[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// TestWebhookWorkloads: controllers are judged by their pod template.
func TestWebhookWorkloads(t *testing.T) {
	g := startGate(t, strategies, facts)
	ctx := context.Background()
	deps := g.client.AppsV1().Deployments(g.ns)

	t.Run("deployment with a blocked image refused", func(t *testing.T) {
		_, err := deps.Create(ctx, deployment("blocked", blockedImage, nil), metav1.CreateOptions{})
		mustDeny(t, "deployment with "+blockedImage, err, blockedMsg)
	})

	t.Run("deployment with a clean image created, then updated to a blocked one", func(t *testing.T) {
		d, err := deps.Create(ctx, deployment("web", goodImage, nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("deployment with %s: %v", goodImage, err)
		}
		d.Spec.Template.Spec.Containers[0].Image = blockedImage
		_, err = deps.Update(ctx, d, metav1.UpdateOptions{})
		mustDeny(t, "deployment updated to "+blockedImage, err, blockedMsg)
	})

	t.Run("deployment template labels feed the allow strategy", func(t *testing.T) {
		d := deployment("debug", blockedImage, map[string]string{"app.kubernetes.io/part-of": "debug"})
		if _, err := deps.Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("deployment with %s and template label part-of=debug: %v", blockedImage, err)
		}
	})

	t.Run("statefulset with a high vulnerability refused", func(t *testing.T) {
		ss := &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: "db"},
			Spec: appsv1.StatefulSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: vulnImage}}},
				},
			},
		}
		_, err := g.client.AppsV1().StatefulSets(g.ns).Create(ctx, ss, metav1.CreateOptions{})
		mustDeny(t, "statefulset with "+vulnImage, err, vulnMsg)
	})

	t.Run("deployment with an alerted image created with a warning", func(t *testing.T) {
		g.warnings.Take()
		if _, err := deps.Create(ctx, deployment("alerted", alertedImage, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("deployment with %s: %v", alertedImage, err)
		}
		if w := g.warnings.Take(); !hasWarning(w, alertedMsg) {
			t.Fatalf("warnings %q: none says %q", w, alertedMsg)
		}
	})
}

// TestWebhookSignatures: live signature verification against the local
// registry, with signatures made by the cosign CLI: no facts file.
func TestWebhookSignatures(t *testing.T) {
	harness.RequireE2E(t)
	host := harness.StartRegistry(t)
	signedDigest := harness.PushRandomImage(t, host, "team/app", "signed")
	unsignedDigest := harness.PushRandomImage(t, host, "team/app", "unsigned")
	otherDigest := harness.PushRandomImage(t, host, "team/app", "other")
	bundleDigest := harness.PushRandomImage(t, host, "team/app", "bundle")
	otherBundleDigest := harness.PushRandomImage(t, host, "team/app", "other-bundle")
	signed := host + "/team/app@" + signedDigest
	unsigned := host + "/team/app@" + unsignedDigest
	other := host + "/team/app@" + otherDigest
	bundle := host + "/team/app@" + bundleDigest
	otherBundle := host + "/team/app@" + otherBundleDigest

	keys := t.TempDir()
	key, pub := harness.CosignGenerateKeyPair(t, filepath.Join(keys, "ci"))
	otherKey, _ := harness.CosignGenerateKeyPair(t, filepath.Join(keys, "other"))
	harness.CosignSign(t, key, signed)
	harness.CosignSign(t, otherKey, other)
	// Sigstore bundles, stored as OCI referrers (docker-registry 2.8 has no
	// referrers API: cosign uses the referrers tag).
	harness.CosignSign(t, key, bundle, "--new-bundle-format")
	harness.CosignSign(t, otherKey, otherBundle, "--new-bundle-format")

	policies := attestorYAML(t, "e2e-ci", pub) + `---
apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: e2e-signed}
spec:
  name: e2e-signed
  policy:
    policyMode: requireAttestor
    requiredAttestors: [e2e-ci]
  clusters:
  - clusterId: e2e-cluster
  status: enabled
`
	g := startGate(t, policies, "")
	ctx := context.Background()
	pods := g.client.CoreV1().Pods(g.ns)

	t.Run("signed by the attestor", func(t *testing.T) {
		if _, err := pods.Create(ctx, pod("signed", signed, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod with %s: %v", signed, err)
		}
	})
	t.Run("signed by the attestor, by tag", func(t *testing.T) {
		if _, err := pods.Create(ctx, pod("signed-tag", host+"/team/app:signed", nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod with %s/team/app:signed: %v", host, err)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		_, err := pods.Create(ctx, pod("unsigned", unsigned, nil), metav1.CreateOptions{})
		mustDeny(t, "pod with "+unsigned, err, unsigned, `attestor "e2e-ci"`)
	})
	t.Run("signed by another key", func(t *testing.T) {
		_, err := pods.Create(ctx, pod("other", other, nil), metav1.CreateOptions{})
		mustDeny(t, "pod with "+other, err, other, `attestor "e2e-ci"`)
	})
	t.Run("signed by the attestor, Sigstore bundle", func(t *testing.T) {
		if _, err := pods.Create(ctx, pod("bundle", bundle, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod with %s: %v", bundle, err)
		}
	})
	t.Run("signed by another key, Sigstore bundle", func(t *testing.T) {
		_, err := pods.Create(ctx, pod("other-bundle", otherBundle, nil), metav1.CreateOptions{})
		mustDeny(t, "pod with "+otherBundle, err, otherBundle, `attestor "e2e-ci"`, "signed by another key")
	})
	t.Run("deployment with an unsigned image", func(t *testing.T) {
		_, err := g.client.AppsV1().Deployments(g.ns).Create(ctx, deployment("unsigned", unsigned, nil), metav1.CreateOptions{})
		mustDeny(t, "deployment with "+unsigned, err, `attestor "e2e-ci"`)
	})
}

// attestorYAML is an Attestor named name whose key is the cosign public key
// in the file pubFile; it ignores the transparency log, as the harness's
// cosign signs without one.
func attestorYAML(t *testing.T, name, pubFile string) string {
	t.Helper()
	pub, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	return `apiVersion: imagegate.dev/v1alpha1
kind: Attestor
metadata: {name: ` + name + `}
spec:
  description: the e2e test's cosign key
  publicKeys:
  - |
` + indent(string(pub), "    ") + `
  transparencyLog: ignore
`
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
