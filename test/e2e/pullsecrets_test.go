package e2e

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imagegate/imagegate/test/e2e/harness"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPullSecrets: a registry with htpasswd auth holds cosign-signed
// images; imagegate has no registry credentials of its own (an empty
// DOCKER_CONFIG) and reads policies and pull secrets from the cluster. Pods
// are admitted only when their imagePullSecrets or their service account's
// let imagegate fetch the signatures.
func TestPullSecrets(t *testing.T) {
	cluster := harness.SharedCluster(t)
	ctx := context.Background()
	const user, password = "puller", "e2e-pull-secret"
	host := harness.StartRegistry(t, harness.WithHTPasswd(user, password))
	basic := remote.WithAuth(&authn.Basic{Username: user, Password: password})
	push := func(tag string) string {
		t.Helper()
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.NewTag(host+"/private/app:"+tag, name.Insecure)
		if err := remote.Write(ref, img, basic); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		d, _ := img.Digest()
		return host + "/private/app@" + d.String()
	}
	refused, podSecret, accountSecret, deploySecret := push("refused"), push("pod-secret"), push("account-secret"), push("deploy-secret")
	if _, err := remote.Head(mustRef(t, refused)); err == nil {
		t.Fatal("the registry serves images without credentials: the test would prove nothing")
	}

	// cosign signs with the credentials in its DOCKER_CONFIG; imagegate
	// then starts with an empty one.
	dockerConfig := `{"auths":{"` + host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(user+":"+password)) + `"}}}`
	withCreds, empty := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(withCreds, "config.json"), []byte(dockerConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", withCreds)
	key, pub := harness.CosignGenerateKeyPair(t, filepath.Join(t.TempDir(), "ci"))
	for _, ref := range []string{refused, podSecret, accountSecret, deploySecret} {
		harness.CosignSign(t, key, ref)
	}
	t.Setenv("DOCKER_CONFIG", empty)

	cluster.ApplyPolicies(t, attestorYAML(t, "e2e-pull-ci", pub), `apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: e2e-pull-signed}
spec:
  name: e2e-pull-signed
  policy:
    policyMode: requireAttestor
    requiredAttestors: [e2e-pull-ci]
  clusters:
  - clusterId: e2e-cluster
  status: enabled
`)

	ig := harness.StartImagegate(t, "--policy-source=kube", "--kubeconfig", cluster.Kubeconfig, "--cluster-id", clusterID)
	harness.RegisterWebhook(t, cluster.Config, ig.URL, ig.CAPEM)
	client := cluster.Client(t)
	ns := createNamespace(t, client, "pullsecrets")
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(dockerConfig)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "builder"}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := client.CoreV1().Pods(ns)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	// admittedSoon retries while imagegate's informers catch up with the
	// Secret and ServiceAccount just created.
	admittedSoon := func(what string, create func() error) {
		t.Helper()
		var last error
		waitFor(t, 10*time.Second, what+" admitted", func() (bool, error) {
			last = create()
			return last == nil, nil
		})
		if last != nil {
			t.Fatalf("%s: %v", what, last)
		}
	}

	t.Run("pod without pull secrets is refused: registry refused access", func(t *testing.T) {
		_, err := pods.Create(ctx, pod("no-secret", refused, nil), dryRun)
		mustDeny(t, "pod with "+refused, err, `attestor "e2e-pull-ci"`, "registry refused access (auth)")
	})
	t.Run("pod with imagePullSecrets is admitted", func(t *testing.T) {
		p := pod("pod-secret", podSecret, nil)
		p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
		admittedSoon("pod with imagePullSecrets", func() error { _, err := pods.Create(ctx, p, dryRun); return err })
	})
	t.Run("cached verdict reused for a pod without pull secrets (docs/kubernetes.md)", func(t *testing.T) {
		if _, err := pods.Create(ctx, pod("cached", podSecret, nil), dryRun); err != nil {
			t.Fatalf("pod without pull secrets, image verified moments ago for another pod: %v", err)
		}
	})
	t.Run("pod whose service account has the pull secret is admitted", func(t *testing.T) {
		p := pod("account-secret", accountSecret, nil)
		p.Spec.ServiceAccountName = "builder"
		admittedSoon("pod of service account builder", func() error { _, err := pods.Create(ctx, p, dryRun); return err })
	})
	t.Run("deployment with imagePullSecrets in its template is admitted", func(t *testing.T) {
		d := deployment("deploy-secret", deploySecret, nil)
		d.Spec.Template.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
		admittedSoon("deployment with imagePullSecrets", func() error {
			_, err := client.AppsV1().Deployments(ns).Create(ctx, d, dryRun)
			return err
		})
	})
	t.Run("pod naming a missing secret is refused", func(t *testing.T) {
		p := pod("missing-secret", refused, nil)
		p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "absent"}}
		_, err := pods.Create(ctx, p, dryRun)
		mustDeny(t, "pod with a missing pull secret", err, "registry refused access (auth)")
	})
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
