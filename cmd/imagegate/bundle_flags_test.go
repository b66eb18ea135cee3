package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/bundle"
	"github.com/sigstore/cosign/v2/pkg/cosign"
)

func TestServeBundleFlags(t *testing.T) {
	base := []string{"--cluster-id", "c", "--tls-cert-file", "c.pem", "--tls-private-key-file", "k.pem"}
	oci := "--policy-source=oci://registry.example.com/policies:prod"
	tests := []struct {
		name     string
		args     []string
		wantPoll time.Duration
		wantErr  string
	}{
		{"key", []string{oci, "--policy-key", "cosign.pub"}, defaultBundlePoll, ""},
		{"attestor file", []string{oci, "--policy-attestor-file", "a.yaml", "--policy-attestor", "release"}, defaultBundlePoll, ""},
		{"poll given", []string{oci, "--policy-key", "k", "--policy-poll-interval", "5s"}, 5 * time.Second, ""},
		{"no key", []string{oci}, 0, "needs --policy-key or --policy-attestor-file"},
		{"two keys", []string{oci, "--policy-key", "k", "--policy-attestor-file", "a"}, 0, "exclude each other"},
		{"name without file", []string{oci, "--policy-key", "k", "--policy-attestor", "x"}, 0, "--policy-attestor needs --policy-attestor-file"},
		{"with --policies", []string{oci, "--policy-key", "k", "--policies", "dir"}, 0, "exclude each other"},
		{"key without bundle", []string{"--policies", "dir", "--policy-key", "k"}, 0, "need a policy bundle"},
		{"no tag", []string{"--policy-source=oci://registry.example.com/policies", "--policy-key", "k"}, 0, "policy bundle reference"},
		{"bounds", []string{oci, "--policy-key", "k", "--policy-bundle-max-layers", "0"}, 0, "must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			f, code := parseServeFlags(append(append([]string{}, base...), tc.args...), &stderr)
			if tc.wantErr != "" {
				if f != nil || code != exitBadUsage || !strings.Contains(stderr.String(), tc.wantErr) {
					t.Fatalf("code %d, stderr %q; want exit %d and %q", code, stderr.String(), exitBadUsage, tc.wantErr)
				}
				return
			}
			if f == nil || f.bundle.poll != tc.wantPoll {
				t.Fatalf("stderr %q; want poll %v", stderr.String(), tc.wantPoll)
			}
		})
	}
}

// cosignKeys writes a cosign key pair (as cosign generate-key-pair does,
// password "pw") into dir.
func cosignKeys(t *testing.T, dir, prefix string) (key, pub string) {
	t.Helper()
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	key, pub = filepath.Join(dir, prefix+".key"), filepath.Join(dir, prefix+".pub")
	if err := os.WriteFile(key, kb.PrivateBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, kb.PublicBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return key, pub
}

// TestPolicyPushAndCheck pushes the examples as a signed bundle and checks
// the example manifests against it: the decisions are those of the
// directory. Refusals: an invalid set is not pushed; an unsigned bundle, or
// one checked against another key, is not used.
func TestPolicyPushAndCheck(t *testing.T) {
	t.Setenv("COSIGN_PASSWORD", "pw")
	reg := attestationtest.NewRegistry(t)
	dir := t.TempDir()
	key, pub := cosignKeys(t, dir, "cosign")
	_, otherPub := cosignKeys(t, dir, "other")
	ref := "oci://" + reg.Host + "/policies:prod"
	cmd := []string{"policy", "push", "examples/policies", ref, "--key", key}
	stdout, stderr, code := runCLIEnv(t, []string{"COSIGN_PASSWORD=pw"}, cmd...)
	if code != 0 || !strings.HasPrefix(stdout, reg.Host+"/policies@sha256:") {
		t.Fatalf("push: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	checkArgs := []string{"check", "--facts", "examples/facts.yaml", "-o", "json", "examples/manifests"}
	wantOut, _, wantCode := runCLI(t, "", append(checkArgs, "--policies", "examples/policies")...)
	gotOut, stderr, gotCode := runCLI(t, "", append(checkArgs, "--policies", ref, "--policy-key", pub)...)
	if gotOut != wantOut || gotCode != wantCode {
		t.Fatalf("check against the bundle: exit %d (want %d), stderr %q\n%s\nwant\n%s", gotCode, wantCode, stderr, gotOut, wantOut)
	}

	_, stderr, code = runCLI(t, "", append(checkArgs, "--policies", ref, "--policy-key", otherPub)...)
	if code != exitBadUsage || !strings.Contains(stderr, "signature not verified") {
		t.Fatalf("another key: exit %d, stderr %q", code, stderr)
	}

	unsigned := "oci://" + reg.Host + "/policies:unsigned"
	stdout, stderr, code = runCLI(t, "", "policy", "push", "examples/policies/strategies.yaml", unsigned)
	if code != 0 || !strings.Contains(stderr, "cosign sign --key") {
		t.Fatalf("unsigned push: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	_, stderr, code = runCLI(t, "", append(checkArgs, "--policies", unsigned, "--policy-key", pub)...)
	if code != exitBadUsage || !strings.Contains(stderr, "signature not verified") {
		t.Fatalf("unsigned bundle: exit %d, stderr %q", code, stderr)
	}

	bad := t.TempDir()
	data, _ := os.ReadFile("../../examples/policies/strategies.yaml")
	if err := os.WriteFile(filepath.Join(bad, "strategies.yaml"), bytes.Replace(data, []byte("ruleAction: block"), []byte("ruleAction: explode"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	invalid := "oci://" + reg.Host + "/policies:invalid"
	_, stderr, code = runCLIEnv(t, []string{"COSIGN_PASSWORD=pw"}, "policy", "push", bad, invalid, "--key", key)
	if code != exitDenied || !strings.Contains(stderr, "strategies.yaml") || !strings.Contains(stderr, "spec.ruleAction") {
		t.Fatalf("invalid set: exit %d, stderr %q", code, stderr)
	}
	if _, err := headRef(reg.Host + "/policies:invalid"); err == nil {
		t.Fatal("an invalid set was pushed")
	}

	_, stderr, code = runCLIEnv(t, []string{"COSIGN_PASSWORD=wrong"}, "policy", "push", "examples/policies", "oci://"+reg.Host+"/policies:wrongpw", "--key", key)
	if code != exitBadUsage || !strings.Contains(stderr, "--key") {
		t.Fatalf("wrong password: exit %d, stderr %q", code, stderr)
	}
	if _, err := headRef(reg.Host + "/policies:wrongpw"); err == nil {
		t.Fatal("a bundle was pushed although its key did not load")
	}
}

// runCLIEnv is runCLI with extra environment variables.
func runCLIEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return runCLI(t, "", args...)
}

func headRef(ref string) (any, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	return remote.Head(r)
}

// TestServePolicyBundle runs the real binary on a bundle in an in-process
// registry: not ready while the tag names only an unsigned bundle (no
// policies would admit everything), ready and deciding once a signed one is
// there, and an unsigned successor is refused with the last good set kept,
// on /readyz and in imagegate_policy_reloads_total.
func TestServePolicyBundle(t *testing.T) {
	reg := attestationtest.NewRegistry(t)
	dir := t.TempDir()
	key, pub := cosignKeys(t, dir, "cosign")
	sv, err := bundle.LoadKey(key, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	ref := "oci://" + reg.Host + "/policies:live"
	push := func(action int, sign bool) string {
		t.Helper()
		policies := filepath.Join(t.TempDir(), "s.yaml")
		if err := os.WriteFile(policies, []byte(fmt.Sprintf(blockStrategy, action)), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := bundle.Pack(policies)
		if err != nil {
			t.Fatal(err)
		}
		d, err := b.Push(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		if sign {
			if err := bundle.Sign(context.Background(), d, sv); err != nil {
				t.Fatal(err)
			}
		}
		return d.DigestStr()
	}
	unsignedFirst := push(2, false)
	cert, tlsKey := selfSignedCert(t, dir)
	listen, metrics := freePort(t), freePort(t)
	cmd := exec.Command(binary, "serve", "--policy-source="+ref, "--policy-key", pub, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", tlsKey,
		"--listen", listen, "--metrics-listen", metrics, "--policy-poll-interval", "100ms", "--verification-negative-ttl", "100ms")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	client := serveClient()
	get := func(url string) (int, string) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, "the unsigned bundle's refusal", func() bool {
		_, m := get("http://" + metrics + "/metrics")
		return strings.Contains(m, `imagegate_policy_reloads_total{result="unverified",source="oci"} 1`)
	})
	if code, body := get("https://" + listen + "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("ready (%d %s) with only the unsigned bundle %s", code, body, unsignedFirst)
	}

	signed := push(2, true)
	waitReady(t, client, listen)
	if podAllowed(t, client, listen, "bad-app:1") {
		t.Fatal("bad-app admitted under the bundle's block strategy")
	}
	unsigned := push(1, false) // would turn the block into an alert
	waitFor(t, "the refusal on /readyz", func() bool {
		_, body := get("https://" + listen + "/readyz")
		return strings.Contains(body, unsigned) && strings.Contains(body, "serving "+reg.Host+"/policies@"+signed)
	})
	if podAllowed(t, client, listen, "bad-app:1") {
		t.Fatal("the unsigned bundle's alert strategy governs")
	}
	stopServe(t, cmd)
	if !strings.Contains(logs.String(), "signature not verified") {
		t.Errorf("logs lack the refusal:\n%s", logs.String())
	}
}
