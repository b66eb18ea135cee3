package harness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// CosignRegistryFlags go to every cosign command that talks to a registry.
// The harness's registry is on 127.0.0.1 and speaks plain HTTP; cosign (like
// go-containerregistry) already uses HTTP for loopback registries, so this
// only makes that explicit. --allow-insecure-registry (skip TLS
// verification) is not needed.
var CosignRegistryFlags = []string{"--allow-http-registry=true"}

// emptyTrustedRoot is a Sigstore trusted root with no authorities: given to
// cosign verify with --trusted-root, it keeps cosign from fetching the
// public-good TUF root (which it would otherwise try, and warn about).
const emptyTrustedRoot = `{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`

// offlineEnv keeps a child process off any network but loopback: proxied
// requests go to a closed loopback port, and Go never proxies loopback.
var offlineEnv = []string{
	"HTTPS_PROXY=http://127.0.0.1:9", "https_proxy=http://127.0.0.1:9",
	"HTTP_PROXY=http://127.0.0.1:9", "http_proxy=http://127.0.0.1:9",
}

// Cosign runs the cosign CLI with args in dir and returns its combined
// output and error. No Sigstore service is contacted: TUF_ROOT is a
// directory under dir and anything but loopback goes to a dead proxy.
func Cosign(t TB, dir string, args ...string) (string, error) {
	t.Helper()
	bin := MustTool(t, EnvCosign)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(append(childEnv(), offlineEnv...),
		"COSIGN_PASSWORD=",
		"COSIGN_YES=true",
		"TUF_ROOT="+filepath.Join(dir, ".sigstore-tuf"),
		"SIGSTORE_NO_CACHE=true",
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// CosignGenerateKeyPair makes a cosign key pair with an empty password in
// dir and returns the paths of cosign.key and cosign.pub.
func CosignGenerateKeyPair(t TB, dir string) (keyPath, pubPath string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("cosign key dir: %v", err)
	}
	if out, err := Cosign(t, dir, "generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	return filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
}

// CosignSign signs ref (registry/repo@sha256:...) with the key at keyPath,
// storing the signature in the registry and nothing in a transparency log;
// extra flags (e.g. --new-bundle-format) go to cosign sign.
func CosignSign(t TB, keyPath, ref string, extra ...string) {
	t.Helper()
	args := append([]string{"sign", "--key", keyPath, "--tlog-upload=false", "--yes"}, CosignRegistryFlags...)
	args = append(args, extra...)
	if out, err := Cosign(t, filepath.Dir(keyPath), append(args, ref)...); err != nil {
		t.Fatalf("cosign sign %s: %v\n%s", ref, err, out)
	}
}

// CosignVerify runs cosign verify of ref against the public key at pubKey,
// without a transparency log or TUF root, and returns its exit status (the output goes
// to the test log).
func CosignVerify(t TB, pubKey, ref string) int {
	t.Helper()
	dir := filepath.Dir(pubKey)
	root := filepath.Join(dir, "empty-trusted-root.json")
	if err := os.WriteFile(root, []byte(emptyTrustedRoot), 0o644); err != nil {
		t.Fatalf("trusted root: %v", err)
	}
	args := append([]string{"verify", "--key", pubKey, "--insecure-ignore-tlog=true", "--trusted-root", root}, CosignRegistryFlags...)
	out, err := Cosign(t, dir, append(args, ref)...)
	code := ExitCode(err)
	t.Logf("cosign verify --key %s %s: exit %d\n%s", filepath.Join(filepath.Base(dir), filepath.Base(pubKey)), ref, code, out)
	return code
}
