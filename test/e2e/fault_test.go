package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
)

// faultProxy stands between imagegate and the real registry and misbehaves
// as fault says (nil: passes everything through). Each case gets its own
// proxy, so its own registry host: nothing cached for one case serves
// another.
func faultProxy(t *testing.T, registry string, fault func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	target, _ := url.Parse("http://" + registry)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fault != nil && fault(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Faults of the transport: imagegate could not talk to the registry.

func delay(w http.ResponseWriter, r *http.Request) bool {
	select {
	case <-time.After(30 * time.Second):
	case <-r.Context().Done():
	}
	return true
}

func status(code int) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(code)
		return true
	}
}

func reset(w http.ResponseWriter, r *http.Request) bool {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN
		}
		conn.Close()
	}
	return true
}

// truncated promises a manifest and hangs up partway through it.
func truncated(w http.ResponseWriter, r *http.Request) bool {
	if !strings.Contains(r.URL.Path, "/manifests/") {
		return false
	}
	w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	w.Header().Set("Content-Length", "4096")
	_, _ = w.Write([]byte(`{"schemaVersion":2,"layers":[`))
	http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// Faults of the content: the registry answers, with material that cannot
// vouch for the image.

func onManifests(f func(w http.ResponseWriter, r *http.Request)) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		f(w, r)
		return true
	}
}

func garbage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	b := make([]byte, 4096)
	_, _ = rand.Read(b)
	_, _ = w.Write(b)
}

// endless streams a manifest that never ends, until the reader hangs up.
func endless(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	chunk := bytes.Repeat([]byte(`{"layers":[`), 4096)
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// huge declares and sends a 256 MiB manifest.
func huge(w http.ResponseWriter, r *http.Request) {
	const size = 256 << 20
	w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	w.Header().Set("Content-Length", strconv.Itoa(size))
	_, _ = io.CopyN(w, zeros{}, size)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// manyLayers serves the signature image (the .sig tag) with 5,000 layers.
func manyLayers(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasSuffix(r.URL.Path, ".sig") {
		return false
	}
	var layers []string
	for i := range 5000 {
		layers = append(layers, fmt.Sprintf(`{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":1,"digest":"sha256:%064x","annotations":{"dev.cosignproject.cosign/signature":"AAAA"}}`, i))
	}
	w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	fmt.Fprintf(w, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[%s]}`, strings.Join(layers, ","))
	return true
}

// manyReferrers answers the referrers tag (registries without the
// referrers API) with 3,000 bundle referrers, each a manifest whose bundle
// layer is 16 KiB of junk. The image's .sig signature is untouched.
func manyReferrers(digest string) func(w http.ResponseWriter, r *http.Request) bool {
	tag := "/manifests/" + strings.Replace(digest, ":", "-", 1)
	const junk = "sha256:00000000000000000000000000000000000000000000000000000000000000aa"
	return func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.HasSuffix(r.URL.Path, tag):
			var ms []string
			for i := range 3000 {
				ms = append(ms, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:%064x","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`, i+1))
			}
			w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
			fmt.Fprintf(w, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}`, strings.Join(ms, ","))
		case strings.Contains(r.URL.Path, "/manifests/sha256:0000"):
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			fmt.Fprintf(w, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","size":16384,"digest":%q}]}`, junk)
		case strings.HasSuffix(r.URL.Path, "/blobs/"+junk):
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(bytes.Repeat([]byte("{"), 16384))
		default:
			return false
		}
		return true
	}
}

// Verdict classes as imagegate serve --on-verification-error=allow answers:
// "could not verify" is admitted with a warning, "not verified" denied.
const (
	verified     = "verified"
	notVerified  = "not verified"
	couldNotVery = "could not verify"
)

// TestFaultInjection runs imagegate serve against the real registry through
// a proxy that injects transport faults, and against hostile answers (huge,
// endless or garbage manifests, thousands of layers and referrers). Each
// answer must be of the right class, come before the request's deadline,
// and leave imagegate's memory bounded.
func TestFaultInjection(t *testing.T) {
	harness.RequireE2E(t)
	registry := harness.StartRegistry(t)
	digest := harness.PushRandomImage(t, registry, "team/app", "signed")
	key, pub := harness.CosignGenerateKeyPair(t, filepath.Join(t.TempDir(), "ci"))
	harness.CosignSign(t, key, registry+"/team/app@"+digest)
	policies := attestorYAML(t, "e2e-ci", pub) + `---
apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: e2e-signed}
spec:
  policy: {policyMode: requireAttestor, requiredAttestors: [e2e-ci]}
  clusters: [{clusterId: e2e-cluster}]
`
	dir := t.TempDir()
	ig := harness.StartImagegate(t, "--policies", filepath.Dir(writeFile(t, filepath.Join(dir, "policies"), "p.yaml", policies)),
		"--cluster-id", clusterID, "--on-verification-error", "allow", "--verification-ttl", "1s", "--verification-negative-ttl", "1s")
	client := ig.HTTPClient()
	client.Timeout = time.Minute // the deadline is imagegate's to keep

	cases := []struct {
		name  string
		fault func(w http.ResponseWriter, r *http.Request) bool
		want  string
	}{
		{"no fault", nil, verified},
		{"delay past the deadline", delay, couldNotVery},
		{"429 with Retry-After", status(http.StatusTooManyRequests), couldNotVery},
		{"500", status(http.StatusInternalServerError), couldNotVery},
		{"503", status(http.StatusServiceUnavailable), couldNotVery},
		{"connection reset", reset, couldNotVery},
		{"manifests cut off", truncated, couldNotVery},
		{"garbage manifests", onManifests(garbage), notVerified},
		{"endless manifests", onManifests(endless), notVerified},
		{"256 MiB manifests", onManifests(huge), notVerified},
		{"5,000 signature layers", manyLayers, notVerified},
		{"3,000 junk referrers beside a valid signature", manyReferrers(digest), verified},
	}
	const timeout = 3 * time.Second
	// stale-if-error covers a registry that has become slow: verified
	// once, then the registry hangs past the TTL; the cached verdict is
	// served, within the deadline.
	t.Run("slow after a verification: served stale", func(t *testing.T) {
		var slow atomic.Bool
		host := faultProxy(t, registry, func(w http.ResponseWriter, r *http.Request) bool {
			return slow.Load() && delay(w, r)
		})
		image := host + "/team/app@" + digest
		if got, text := admit(t, client, ig.URL, image, timeout); got != verified {
			t.Fatalf("first admission: %s: %s", got, text)
		}
		slow.Store(true)
		time.Sleep(1500 * time.Millisecond) // past --verification-ttl
		start := time.Now()
		got, text := admit(t, client, ig.URL, image, timeout)
		if took := time.Since(start); got != verified || took >= timeout {
			t.Errorf("after the TTL, registry hanging: %s in %v: %s", got, took, text)
		}
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			host := faultProxy(t, registry, c.fault)
			image := host + "/team/app@" + digest
			start := time.Now()
			got, text := admit(t, client, ig.URL, image, timeout)
			took := time.Since(start)
			t.Logf("%s: %s in %v: %s", c.name, got, took.Round(time.Millisecond), text)
			if got != c.want {
				t.Errorf("verdict %q, want %q: %s", got, c.want, text)
			}
			if took >= timeout {
				t.Errorf("answered after %v, past the %v deadline", took, timeout)
			}
			if rss := residentBytes(t, ig.MetricsURL); rss > 256<<20 {
				t.Errorf("imagegate holds %d MiB after the case", rss>>20)
			}
		})
	}
}

// admit posts an AdmissionReview for a pod running image and classifies
// the answer.
func admit(t *testing.T, c *http.Client, base, image string, timeout time.Duration) (verdict, text string) {
	t.Helper()
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"faults"},"spec":{"containers":[{"name":"c","image":"` + image + `"}]}}`
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},` +
		`"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"faults","operation":"CREATE","userInfo":{"username":"e2e"},"object":` + pod + `}}`
	resp, err := c.Post(base+"/validate?timeout="+timeout.String(), "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Response struct {
			Allowed  bool
			Warnings []string
			Status   *struct{ Message string }
		}
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	r := out.Response
	switch {
	case r.Allowed && len(r.Warnings) == 0:
		return verified, string(raw)
	case r.Allowed && strings.Contains(strings.Join(r.Warnings, "\n"), "could not be verified"):
		return couldNotVery, string(raw)
	case !r.Allowed && r.Status != nil && strings.Contains(r.Status.Message, "is not signed by attestor"):
		return notVerified, string(raw)
	}
	return "unexpected answer", string(raw)
}

// residentBytes reads imagegate's process_resident_memory_bytes.
func residentBytes(t *testing.T, metricsURL string) int64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}).Get(metricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	t.Fatal("no process_resident_memory_bytes in /metrics")
	return 0
}
