package webhook_test

import (
	"context"
	"crypto/elliptic"
	"net/http"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/webhook"
)

// signedPolicy requires attestor ci (trusting key pub) in cluster c1.
func signedPolicy(t testing.TB, pub string) *policy.Snapshot {
	t.Helper()
	indent := "    " + strings.ReplaceAll(strings.TrimSpace(pub), "\n", "\n    ")
	objs, err := policy.Parse("p.yaml", []byte("apiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: ci}\nspec:\n  transparencyLog: ignore\n  publicKeys:\n  - |\n"+indent+
		"\n---\napiVersion: imagegate.dev/v1alpha1\nkind: BinarySecurityPolicy\nmetadata: {name: signed}\nspec:\n  policy: {requiredAttestors: [ci]}\n  clusters: [{clusterId: c1}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.NewSnapshot(objs...)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// A registry slower than the API server's timeout: the answer names the
// attestor that timed out (and --on-verification-error=allow admits), rather
// than failing the whole decision on the expired context.
func TestSlowRegistryAnswersWithAttestorTimeout(t *testing.T) {
	reg := at.NewRegistry(t)
	k := at.ECKey(t, elliptic.P256())
	_, d := reg.Push(t, "app", "v1")
	gate := make(chan struct{})
	defer close(gate)
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool { <-gate; return false })
	snap := signedPolicy(t, at.PubPEM(t, k))
	for _, allow := range []bool{false, true} {
		v, err := attestation.New()
		if err != nil {
			t.Fatal(err)
		}
		e, err := rego.New(context.Background(), snap, rego.WithClusterID("c1"), rego.WithVerificationErrorsAllowed(allow))
		if err != nil {
			t.Fatal(err)
		}
		h, _ := webhook.NewHandler(admission.NewDecider(admission.Static{E: e}, attestation.NewSource(v, nil)))
		_, out := post(t, h, reviewJSON("CREATE", "Pod", "default", pod("default", reg.Host+"/app@"+d), ""), "application/json", "?timeout=2s")
		text := fmt32(out)
		if out.Response.Allowed != allow || strings.Contains(text, "could not decide") || !strings.Contains(text, `attestor \"ci\"`) || !strings.Contains(text, "timeout") {
			t.Errorf("allow=%v: %s", allow, text)
		}
	}
}
