package main

import (
	"crypto/elliptic"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	at "github.com/imagegate/imagegate/attestation/attestationtest"
)

// TestVerifyAndLiveCheck signs images in an in-process registry and runs the
// binary: imagegate verify per attestor, and imagegate check verifying live.
func TestVerifyAndLiveCheck(t *testing.T) {
	reg := at.NewRegistry(t)
	ci, qa := at.ECKey(t, elliptic.P256()), at.ECKey(t, elliptic.P256())
	signed, d := reg.Push(t, "team/app", "1.0")
	reg.Sign(t, "team/app", d, ci)
	unsigned, _ := reg.Push(t, "team/other", "1.0")

	dir := t.TempDir()
	indent := func(s string) string { return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ") }
	objs := "apiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: ci}\nspec:\n  transparencyLog: ignore\n  publicKeys:\n  - |\n" + indent(at.PubPEM(t, ci)) +
		"\n---\napiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: qa}\nspec:\n  transparencyLog: ignore\n  publicKeys:\n  - |\n" + indent(at.PubPEM(t, qa)) +
		"\n---\napiVersion: imagegate.dev/v1alpha1\nkind: BinarySecurityPolicy\nmetadata: {name: signed}\nspec:\n  policy: {requiredAttestors: [ci]}\n  clusters: [{clusterId: c1}]\n"
	policies := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(policies, []byte(objs), 0o644); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := runCLI(t, "", "verify", signed, "--policies", policies, "--attestor", "ci", "-o", "json")
	var v verifyOutput
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || !v.Verified || v.Digest != d || v.Attestors[0].Outcome != "verified" {
		t.Fatalf("verify signed: exit %d, %s %s", code, out, errOut)
	}
	out, _, code = runCLI(t, "", "verify", signed, "--policies", policies, "--attestor", "ci", "--attestor", "qa")
	if code != 1 || !strings.Contains(out, "ci                   verified") || !strings.Contains(out, "qa                   not verified: no matching signatures: signed by another key") {
		t.Errorf("verify with a missing attestor: exit %d\n%s", code, out)
	}
	_, errOut, code = runCLI(t, "", "verify", signed, "--policies", policies, "--attestor", "nobody")
	if code != 2 || !strings.Contains(errOut, `--attestor "nobody": no Attestor of that name`) {
		t.Errorf("unknown attestor: exit %d %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "", "verify", "Not An Image", "--policies", policies, "--attestor", "ci")
	if code != 2 || !strings.Contains(errOut, `IMAGE "Not An Image"`) {
		t.Errorf("bad image: exit %d %s", code, errOut)
	}

	manifest := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: " + signed + "}\n  - {name: b, image: " + unsigned + "}\n"
	out, _, code = runCLI(t, manifest, "check", "--policies", policies, "--cluster-id", "c1", "-o", "json", "-")
	var res jsonOut
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	imgs := res.Results[0].Images
	if code != 1 || imgs[0].Action != "pass" || imgs[1].Action != "unsigned" ||
		imgs[1].Reasons[0] != `image "`+unsigned+`" is not signed by attestor "ci": no signatures found` {
		t.Errorf("live check: exit %d %+v", code, imgs)
	}
	if imgs[0].Digest != d || !strings.HasPrefix(imgs[1].Digest, "sha256:") {
		t.Errorf("live check digests: %q, %q; want %q and the unsigned image's", imgs[0].Digest, imgs[1].Digest, d)
	}

	// The tag moves to an unsigned image: check decides by the digest the
	// tag names now, and says which; a tag that is gone is decided by tag
	// and says why it has no digest.
	_, moved := reg.Push(t, "team/app", "1.0")
	manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: " + signed + "}\n  - {name: b, image: " + reg.Host + "/team/gone:1}\n"
	out, _, code = runCLI(t, manifest, "check", "--policies", policies, "--cluster-id", "c1", "-o", "json", "-")
	res = jsonOut{}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	imgs = res.Results[0].Images
	if code != 1 || imgs[0].Action != "unsigned" || imgs[0].Digest != moved || imgs[1].Digest != "" || !strings.Contains(imgs[1].DigestError, "resolving the tag") {
		t.Errorf("moved tag: exit %d %+v", code, imgs)
	}
	out, _, _ = runCLI(t, manifest, "check", "--policies", policies, "--cluster-id", "c1", "-")
	if !strings.Contains(out, "unsigned "+signed+" ("+moved+")") || !strings.Contains(out, "/team/gone:1 (digest not resolved: resolving the tag") {
		t.Errorf("text output lacks the digests:\n%s", out)
	}
}
