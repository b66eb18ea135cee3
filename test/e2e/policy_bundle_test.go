package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imagegate/imagegate/test/e2e/harness"
)

// bundleStrategy blocks unscanned images named pattern in one cluster.
func bundleStrategy(id int, cluster, pattern string) string {
	return `apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: bundle-` + cluster + `}
spec:
  strategyId: ` + itoa(id) + `
  strategyName: bundle-` + cluster + `
  clusterId: ` + cluster + `
  unScanedImage: true
  ruleAction: block
  imageName: ["` + pattern + `"]
  scopes: [{clusterId: ` + cluster + `, allNamespace: 1}]
`
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// bundleDir writes a policy directory of one file per document.
func bundleDir(t *testing.T, docs ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i, d := range docs {
		writeFile(t, dir, "policy-"+itoa(i)+".yaml", d)
	}
	return dir
}

// imagegateCLI runs an imagegate command other than serve and returns its
// stdout, stderr and exit code.
func imagegateCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(harness.ImagegateBinary(t), args...)
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=") // the harness's keys have an empty password
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.String(), e.String(), harness.ExitCode(err)
}

// reviewAt posts a pod with image to one imagegate and returns whether it was
// allowed and the message.
func reviewAt(t *testing.T, ig *harness.Imagegate, image string) (bool, string) {
	t.Helper()
	resp, err := ig.HTTPClient().Post(ig.URL+"/validate?timeout=10s", "application/json", bytes.NewReader(podReview("bundles", image)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Response struct {
			Allowed bool
			Status  *struct{ Message string }
		}
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	msg := ""
	if out.Response.Status != nil {
		msg = out.Response.Status.Message
	}
	return out.Response.Allowed, msg
}

func getBody(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestOCIPolicyBundle: one signed bundle in the distribution registry
// serves two clusters, each deciding by its own cluster-scoped strategies.
// Bundles signed by another key, unsigned, or tampered with after signing
// are refused and the last good set stays in force, as admission decisions,
// the reload metric and /readyz show; a bundle signed with the cosign CLI
// after the push is taken up. check --policies oci:// decides the same.
func TestOCIPolicyBundle(t *testing.T) {
	harness.RequireE2E(t)
	host := harness.StartRegistry(t)
	keys := t.TempDir()
	key, pub := harness.CosignGenerateKeyPair(t, filepath.Join(keys, "release"))
	otherKey, _ := harness.CosignGenerateKeyPair(t, filepath.Join(keys, "other"))
	ref := "oci://" + host + "/policies/bundle:prod"

	pushTo := func(t *testing.T, ref, dir, key string) string {
		t.Helper()
		args := []string{"policy", "push", dir, ref}
		if key != "" {
			args = append(args, "--key", key)
		}
		stdout, stderr, code := imagegateCLI(t, args...)
		if code != 0 || !strings.HasPrefix(stdout, host+"/policies/bundle@sha256:") {
			t.Fatalf("imagegate %v: exit %d\n%s%s", args, code, stdout, stderr)
		}
		return strings.TrimSpace(stdout)
	}
	push := func(t *testing.T, dir, key string) string { t.Helper(); return pushTo(t, ref, dir, key) }
	first := bundleDir(t, bundleStrategy(9101, "cluster-a", "blocked-*"), bundleStrategy(9102, "cluster-b", "other-*"))
	// The signature is cosign's own: the cosign CLI verifies it.
	if code := harness.CosignVerify(t, pub, push(t, first, key)); code != 0 {
		t.Fatalf("cosign verify of the pushed bundle: exit %d", code)
	}

	facts := writeFile(t, t.TempDir(), "facts.yaml", "images: {}\n")
	start := func(cluster string) *harness.Imagegate {
		return harness.StartImagegate(t, "--policy-source="+ref, "--policy-key", pub, "--cluster-id", cluster,
			"--facts", facts, "--policy-poll-interval", "300ms", "--verification-negative-ttl", "1s")
	}
	a, b := start("cluster-a"), start("cluster-b")
	const blocked, other = "127.0.0.1:5000/blocked-app:1", "127.0.0.1:5000/other-app:1"
	expect := func(t *testing.T, ig *harness.Imagegate, image string, allowed bool) {
		t.Helper()
		got, msg := reviewAt(t, ig, image)
		if got != allowed {
			t.Fatalf("%s: allowed %t (%s), want %t", image, got, msg, allowed)
		}
	}
	t.Run("each cluster decides by its own strategies", func(t *testing.T) {
		expect(t, a, blocked, false)
		expect(t, a, other, true)
		expect(t, b, blocked, true)
		expect(t, b, other, false)
	})

	// v2 would let blocked-* into cluster-a: every bad form of it must leave
	// v1 in force.
	v2 := bundleDir(t, bundleStrategy(9101, "cluster-a", "v2-*"), bundleStrategy(9102, "cluster-b", "other-*"))
	metric := func(result string) string {
		return `imagegate_policy_reloads_total{result="` + result + `",source="oci"}`
	}
	refused := []struct {
		name   string
		push   func(t *testing.T) string
		reason string
		result string // of imagegate_policy_reloads_total
	}{
		{"signed by another key", func(t *testing.T) string { return push(t, v2, otherKey) }, "signature not verified", "unverified"},
		{"unsigned", func(t *testing.T) string {
			return push(t, bundleDir(t, bundleStrategy(9101, "cluster-a", "v2b-*")), "")
		}, "signature not verified", "unverified"},
		{"tampered with after signing", func(t *testing.T) string {
			// A bundle signed under another tag, its manifest changed (a
			// layer's title) and pushed under the watched tag: a digest the
			// release key never signed.
			d := pushTo(t, ref+"-staging", bundleDir(t, bundleStrategy(9101, "cluster-a", "v2c-*")), key)
			return tamper(t, d, strings.TrimPrefix(ref, "oci://"))
		}, "signature not verified", "unverified"},
		{"an invalid set, signed with the release key", func(t *testing.T) string {
			// policy push refuses invalid sets: the attacker's (or a broken
			// pipeline's) bundle is made by hand and signed by the CLI.
			d := invalidBundle(t, pushTo(t, ref+"-staging", first, ""), strings.Replace(bundleStrategy(9101, "cluster-a", "v2d-*"), "ruleAction: block", "ruleAction: explode", 1))
			harness.CosignSign(t, key, d)
			tag, _ := name.ParseReference(strings.TrimPrefix(ref, "oci://"), name.Insecure)
			desc, err := remote.Get(bundleRef(t, d))
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Put(tag, rawManifest(desc.Manifest)); err != nil {
				t.Fatal(err)
			}
			return d
		}, "spec.ruleAction", "invalid"},
	}
	for _, tc := range refused {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			before := metricValue(getBody(t, http.DefaultClient, a.MetricsURL+"/metrics"), metric(tc.result))
			digest := tc.push(t)
			digest = digest[strings.Index(digest, "@")+1:]
			harness.Eventually(t, 20*time.Second, "the refusal on /readyz", func() error {
				body := getBody(t, a.HTTPClient(), a.URL+"/readyz")
				if !strings.Contains(body, digest) || !strings.Contains(body, tc.reason) {
					return errorf("readyz: %s", body)
				}
				return nil
			})
			expect(t, a, blocked, false)
			expect(t, b, other, false)
			m := getBody(t, http.DefaultClient, a.MetricsURL+"/metrics")
			if after := metricValue(m, metric(tc.result)); after != before+1 {
				t.Fatalf("%s went from %v to %v, want one more", metric(tc.result), before, after)
			}
			if v := metricValue(m, "imagegate_policy_set_rejected"); v != 1 {
				t.Fatalf("imagegate_policy_set_rejected %v after a refusal, want 1", v)
			}
		})
	}

	t.Run("signed with the cosign CLI after the push", func(t *testing.T) {
		// Not v2's digest: that one carries the other key's signature, and
		// a verdict on a signed digest is kept for --verification-ttl.
		v3 := bundleDir(t, bundleStrategy(9101, "cluster-a", "v2-*"), bundleStrategy(9102, "cluster-b", "other-*"), "# v3\n")
		d := push(t, v3, "")
		harness.CosignSign(t, key, d)
		harness.Eventually(t, 20*time.Second, "v2 in force in cluster-a", func() error {
			if ok, msg := reviewAt(t, a, blocked); !ok {
				return errorf("blocked-app still denied: %s", msg)
			}
			return nil
		})
		expect(t, a, "127.0.0.1:5000/v2-app:1", false)
		expect(t, b, other, false)
		// /readyz and the gauge follow the load, a moment after the swap.
		harness.Eventually(t, 5*time.Second, "no refusal on /readyz or in the metrics", func() error {
			if body := getBody(t, a.HTTPClient(), a.URL+"/readyz"); strings.Contains(body, "not in force") {
				return errorf("readyz still reports a refusal: %s", body)
			}
			if v := metricValue(getBody(t, http.DefaultClient, a.MetricsURL+"/metrics"), "imagegate_policy_set_rejected"); v != 0 {
				return errorf("imagegate_policy_set_rejected %v with the signed bundle in force", v)
			}
			return nil
		})
	})

	t.Run("check --policies oci://", func(t *testing.T) {
		manifest := writeFile(t, t.TempDir(), "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: bundles}\nspec:\n  containers: [{name: c, image: \"127.0.0.1:5000/v2-app:1\"}]\n")
		stdout, stderr, code := imagegateCLI(t, "check", "--policies", ref, "--policy-key", pub, "--cluster-id", "cluster-a", "--facts", facts, manifest)
		if code != 1 || !strings.Contains(stdout, "9101") {
			t.Fatalf("check: exit %d\n%s%s", code, stdout, stderr)
		}
		_, stderr, code = imagegateCLI(t, "check", "--policies", ref, "--policy-key", filepath.Join(keys, "other", "cosign.pub"), "--facts", facts, manifest)
		if code != 2 || !strings.Contains(stderr, "signature not verified") {
			t.Fatalf("check with another key: exit %d\n%s", code, stderr)
		}
	})
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }

// tamper changes the manifest at digestRef (a layer's title annotation) and
// pushes the result under tagRef; it returns the new reference by digest.
func tamper(t *testing.T, digestRef, tagRef string) string {
	t.Helper()
	d, err := name.ParseReference(digestRef, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(d)
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Replace(desc.Manifest, []byte(`"policy-0.yaml"`), []byte(`"policy-0-tampered.yaml"`), 1)
	if bytes.Equal(changed, desc.Manifest) {
		t.Fatalf("nothing to tamper with in %s", desc.Manifest)
	}
	tag, err := name.ParseReference(tagRef, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(tag, rawManifest(changed)); err != nil {
		t.Fatal(err)
	}
	h, _, _ := v1.SHA256(bytes.NewReader(changed))
	return tag.Context().Digest(h.String()).String()
}

type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// metricValue is the value of series in a Prometheus text exposition, 0
// when it is absent.
func metricValue(body, series string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func bundleRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// invalidBundle copies the bundle at digestRef with its first layer
// replaced by doc, under a tag of its own, and returns it by digest.
func invalidBundle(t *testing.T, digestRef, doc string) string {
	t.Helper()
	r := bundleRef(t, digestRef)
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	layer := static.NewLayer([]byte(doc), "application/vnd.imagegate.policy.v1+yaml")
	if err := remote.WriteLayer(r.Context(), layer); err != nil {
		t.Fatal(err)
	}
	h, _ := layer.Digest()
	l0 := m["layers"].([]any)[0].(map[string]any)
	l0["digest"], l0["size"] = h.String(), len(doc)
	raw, _ := json.Marshal(m)
	tag := r.Context().Tag("invalid")
	if err := remote.Put(tag, rawManifest(raw)); err != nil {
		t.Fatal(err)
	}
	d, _, _ := v1.SHA256(bytes.NewReader(raw))
	return r.Context().Digest(d.String()).String()
}
