package attestation_test

import (
	"crypto/elliptic"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
)

// TestVerifyBundles: signatures stored as Sigstore bundles (cosign sign
// --new-bundle-format), on registries with and without the OCI 1.1
// referrers API.
func TestVerifyBundles(t *testing.T) {
	for _, api := range []bool{false, true} {
		name := "referrers tag fallback"
		var opts []at.RegistryOption
		if api {
			name, opts = "referrers API", []at.RegistryOption{at.WithReferrers()}
		}
		t.Run(name, func(t *testing.T) { testBundles(t, at.NewRegistry(t, opts...)) })
	}
}

func testBundles(t *testing.T, reg *at.Registry) {
	ci, other := at.ECKey(t, elliptic.P256()), at.ECKey(t, elliptic.P256())
	signed, signedDigest := reg.Push(t, "app", "signed")
	reg.SignBundle(t, "app", signedDigest, ci)
	_, otherDigest := reg.Push(t, "app", "other")
	reg.SignBundle(t, "app", otherDigest, other)
	_, copiedDigest := reg.Push(t, "app", "copied")
	reg.AttachBundle(t, "app", copiedDigest, at.Bundle(t, ci, at.Statement(signedDigest, at.SignPredicateType), nil))
	_, attDigest := reg.Push(t, "app", "attestation-only")
	reg.AttachBundle(t, "app", attDigest, at.Bundle(t, ci, at.Statement(attDigest, attestation.VulnPredicateType), nil))
	_, blobDigest := reg.Push(t, "app", "garbage")
	reg.AttachBundle(t, "app", blobDigest, []byte(`{"mediaType":"`+at.BundleMediaType+`","messageSignature":{}}`))
	_, garbageBesideDigest := reg.Push(t, "app", "garbage-beside")
	reg.Sign(t, "app", garbageBesideDigest, ci)
	reg.AttachBundle(t, "app", garbageBesideDigest, []byte(`{"mediaType":"`+at.BundleMediaType+`","dsseEnvelope":{}}`))
	_, bothDigest := reg.Push(t, "app", "both")
	reg.Sign(t, "app", bothDigest, other)
	reg.SignBundle(t, "app", bothDigest, ci)

	ciAtt := at.KeyAttestor(t, "ci", ci)
	required := at.KeyAttestor(t, "ci-tlog", ci)
	required.Spec.TransparencyLog = "required"
	cases := []struct {
		name, ref string
		att       *policy.Attestor
		want      attestation.Outcome
		reason    string
	}{
		{"valid key, by tag", signed, ciAtt, attestation.Verified, ""},
		{"valid key, by digest", reg.Host + "/app@" + signedDigest, ciAtt, attestation.Verified, ""},
		{"wrong key", reg.Host + "/app@" + otherDigest, ciAtt, attestation.NotVerified, "signed by another key"},
		{"statement about another digest", reg.Host + "/app@" + copiedDigest, ciAtt, attestation.NotVerified, "digest mismatch"},
		{"an attestation is not a signature", reg.Host + "/app@" + attDigest, ciAtt, attestation.NotVerified, "no signatures found"},
		// sigstore-go refuses the malformed bundle; cosign skips such a
		// referrer, and so does imagegate.
		{"malformed bundle", reg.Host + "/app@" + blobDigest, ciAtt, attestation.NotVerified, "no signatures found"},
		{"malformed bundle beside a .sig signature", reg.Host + "/app@" + garbageBesideDigest, ciAtt, attestation.Verified, ""},
		{"bundle beside a .sig signature", reg.Host + "/app@" + bothDigest, ciAtt, attestation.Verified, ""},
		// cosign verify judges an image with bundles by its bundles only.
		{".sig signature beside a bundle", reg.Host + "/app@" + bothDigest, at.KeyAttestor(t, "other", other), attestation.NotVerified, "signed by another key"},
		{"transparency log required, none in the bundle", signed, required, attestation.NotVerified, "carries no Rekor entry"},
	}
	v := newVerifier(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := outcome(verify(t, v, c.ref, c.att), c.att.Metadata.Name)
			if got != c.want || !strings.Contains(why, c.reason) {
				t.Errorf("got %v (%q), want %v (%q)", got, why, c.want, c.reason)
			}
		})
	}
}
