package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/test/e2e/harness"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestImageSelfAdmission builds imagegate's image with make image's builder
// (cmd/imagebuild, no Docker daemon) twice, pushing it to the test registry
// under two repositories: the two builds must have one digest. The image is
// signed with the cosign CLI in one repository only; imagegate's own policy
// for its images (a BinarySecurityPolicy with images: [imagegate/*]) admits
// a pod running the signed one and refuses the same image unsigned.
func TestImageSelfAdmission(t *testing.T) {
	harness.RequireE2E(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	host := harness.StartRegistry(t)
	dir := t.TempDir()
	builder := filepath.Join(dir, "imagebuild")
	if out, err := exec.Command("go", "build", "-C", root, "-o", builder, "./cmd/imagebuild").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/imagebuild: %v\n%s", err, out)
	}
	build := func(out, push string) string {
		t.Helper()
		cmd := exec.Command(builder, "--out", out, "--platforms", "linux/amd64", "--push", push)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1764547200")
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("imagebuild --push %s: %v\n%s", push, err, b)
		}
		// The last line is the pushed reference by digest.
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		t.Logf("imagebuild: %s", strings.Join(lines, " | "))
		return lines[len(lines)-1]
	}
	signed := build(filepath.Join(dir, "a"), host+"/imagegate/imagegate:e2e")
	unsigned := build(filepath.Join(dir, "b"), host+"/imagegate/unsigned:e2e")
	digest := func(ref string) string { _, d, _ := strings.Cut(ref, "@"); return d }
	if digest(signed) == "" || digest(signed) != digest(unsigned) {
		t.Fatalf("two builds of one commit: %s and %s, want one digest", signed, unsigned)
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "index.json")); err != nil {
		t.Errorf("no OCI layout written: %v", err)
	}

	key, pub := harness.CosignGenerateKeyPair(t, filepath.Join(dir, "release"))
	harness.CosignSign(t, key, signed)
	if code := harness.CosignVerify(t, pub, signed); code != 0 {
		t.Fatalf("cosign verify of the signed image: exit %d", code)
	}

	policies := attestorYAML(t, "imagegate-release", pub) + `---
apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: imagegate-images}
spec:
  policy: {requiredAttestors: [imagegate-release]}
  clusters: [{clusterId: e2e-cluster}]
  images: ["imagegate/*"]
`
	g := startGate(t, policies, "")
	pods := g.client.CoreV1().Pods(g.ns)
	ctx := context.Background()
	if _, err := pods.Create(ctx, pod("signed", signed, nil), metav1.CreateOptions{}); err != nil {
		t.Errorf("pod with imagegate's signed image %s: %v", signed, err)
	}
	if _, err := pods.Create(ctx, pod("signed-tag", host+"/imagegate/imagegate:e2e", nil), metav1.CreateOptions{}); err != nil {
		t.Errorf("pod with imagegate's signed image by tag: %v", err)
	}
	_, err = pods.Create(ctx, pod("unsigned", unsigned, nil), metav1.CreateOptions{})
	mustDeny(t, "pod with imagegate's image unsigned", err, unsigned, `attestor "imagegate-release"`)
}
