package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imagegate/imagegate/test/e2e/harness"
	st "github.com/imagegate/imagegate/test/e2e/sigstoretest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKeylessWebhook: with an Attestor trusting a test Sigstore root
// (spec.trustedRoot) and a BinarySecurityPolicy requiring it, the API server
// admits a pod whose image carries a keyless signature by the attestor's
// identity (certificate with an SCT, Rekor bundle), and refuses one signed
// with a certificate that expired before any verified timestamp.
func TestKeylessWebhook(t *testing.T) {
	harness.RequireE2E(t)
	host := harness.StartRegistry(t)
	pki := st.MustNew("kube")
	trust := st.Trust{Fulcio: []*st.PKI{pki}, Rekor: []*st.PKI{pki}, CT: []*st.PKI{pki}, TSA: []*st.PKI{pki}}
	rootJSON, err := trust.JSON()
	if err != nil {
		t.Fatal(err)
	}
	sign := func(tag string, leaf st.Leaf, logged bool) string {
		t.Helper()
		digest := harness.PushRandomImage(t, host, "team/keyless", tag)
		repo, err := name.NewRepository(host+"/team/keyless", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		s, err := pki.SignKeyless(leaf, st.SimpleSigning(repo.Name(), digest, st.SimpleSigningType))
		if err != nil {
			t.Fatal(err)
		}
		if logged {
			if err := s.LogHashedRekord(pki, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		l, err := s.Legacy()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PushLegacy(repo, digest, l); err != nil {
			t.Fatal(err)
		}
		return repo.Name() + "@" + digest
	}
	valid := sign("valid", st.Leaf{Email: testSubject, Issuer: testIssuer, SCTBy: pki}, true)
	old := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	expiredRef := sign("expired", st.Leaf{Email: testSubject, Issuer: testIssuer, SCTBy: pki, NotBefore: old, NotAfter: old.Add(10 * time.Minute)}, false)

	spec, err := json.Marshal(map[string]any{
		"keyless":         map[string]string{"issuer": testIssuer, "subject": testSubject},
		"trustedRoot":     string(rootJSON),
		"transparencyLog": "optional",
	})
	if err != nil {
		t.Fatal(err)
	}
	policies := `apiVersion: imagegate.dev/v1alpha1
kind: Attestor
metadata: {name: e2e-keyless}
spec: ` + string(spec) + `
---
apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: e2e-keyless}
spec:
  name: e2e-keyless
  policy:
    policyMode: requireAttestor
    requiredAttestors: [e2e-keyless]
  clusters:
  - clusterId: e2e-cluster
  status: enabled
`
	g := startGate(t, policies, "")
	pods := g.client.CoreV1().Pods(g.ns)
	ctx := context.Background()
	t.Run("signed by the identity", func(t *testing.T) {
		if _, err := pods.Create(ctx, pod("keyless", valid, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod with %s: %v", valid, err)
		}
	})
	t.Run("expired certificate, no verified timestamp", func(t *testing.T) {
		_, err := pods.Create(ctx, pod("expired", expiredRef, nil), metav1.CreateOptions{})
		mustDeny(t, "pod with "+expiredRef, err, expiredRef, `attestor "e2e-keyless"`)
		if err != nil && !strings.Contains(err.Error(), "expired") && !strings.Contains(err.Error(), "timestamp") {
			t.Logf("the denial does not name the expiry: %v", err)
		}
	})
}
