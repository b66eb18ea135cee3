// Package attestationtest provides an in-process OCI registry and cosign-format
// signing for tests of signature verification. It signs exactly as the cosign
// CLI does for key-based signatures (simple signing payload, base64 signature
// annotation on an OCI layer under the sha256-<digest>.sig tag); the e2e tests
// check that format against the real cosign CLI.
package attestationtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imagegate/imagegate/policy"
)

// Registry is an in-process OCI registry that counts requests and can be
// made to misbehave.
type Registry struct {
	*httptest.Server
	Host string

	mu       sync.Mutex
	requests []string
	fault    func(w http.ResponseWriter, r *http.Request) bool // true: handled
}

// NewRegistry starts a registry that stops when the test ends.
// Like the distribution registry (docker-registry 2.8) it has no OCI 1.1
// referrers API, so referrers live under the tag fallback; WithReferrers
// turns the API on.
func NewRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	tr := &Registry{}
	o := []registry.Option{registry.Logger(nopLogger())}
	for _, opt := range opts {
		o = append(o, registry.Option(opt))
	}
	inner := registry.New(o...)
	tr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.requests = append(tr.requests, r.Method+" "+r.URL.Path)
		fault := tr.fault
		tr.mu.Unlock()
		if fault != nil && fault(w, r) {
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.Close)
	tr.Host = strings.TrimPrefix(tr.URL, "http://")
	return tr
}

// RegistryOption configures NewRegistry.
type RegistryOption registry.Option

// WithReferrers gives the registry the OCI 1.1 referrers API.
func WithReferrers() RegistryOption { return RegistryOption(registry.WithReferrersSupport(true)) }

// SetFault makes the registry answer with f first; f returns true when it answered.
func (tr *Registry) SetFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	tr.fault = f
	tr.mu.Unlock()
}

// Count returns how many requests matched substr, and forgets them all.
func (tr *Registry) Count(substr string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, r := range tr.requests {
		if strings.Contains(r, substr) {
			n++
		}
	}
	return n
}

// Requests returns the requests seen since the last Reset ("GET /v2/...").
func (tr *Registry) Requests() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.requests...)
}

// Reset forgets the requests counted so far.
func (tr *Registry) Reset() {
	tr.mu.Lock()
	tr.requests = nil
	tr.mu.Unlock()
}

// Push writes a random image and returns its reference by tag and its digest.
func (tr *Registry) Push(t testing.TB, repo, tag string) (string, string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := fmt.Sprintf("%s/%s:%s", tr.Host, repo, tag)
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref, d.String()
}

// Payload is cosign's simple signing document for a digest.
func Payload(repo, digest string) []byte {
	return []byte(fmt.Sprintf(`{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, repo, digest))
}

// Layer is one cosign signature: a payload and annotations.
type Layer struct {
	Payload     []byte
	Annotations map[string]string
}

// SignWith signs a payload as cosign does with a key.
func SignWith(t testing.TB, key crypto.Signer, p []byte) string {
	t.Helper()
	var sig []byte
	var err error
	switch k := key.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, p)
	case *rsa.PrivateKey:
		h := sha256.Sum256(p)
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
	default:
		h := sha256.Sum256(p)
		sig, err = key.Sign(rand.Reader, h[:], crypto.SHA256)
	}
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// Attach writes the signature image for digest in repo with the given layers.
func (tr *Registry) Attach(t testing.TB, repo, digest string, layers ...Layer) {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	for _, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:       static.NewLayer(l.Payload, "application/vnd.dev.cosign.simplesigning.v1+json"),
			Annotations: l.Annotations,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tag, _ := name.NewTag(fmt.Sprintf("%s/%s:%s.sig", tr.Host, repo, strings.Replace(digest, ":", "-", 1)))
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
}

// Sign attaches a cosign key signature of repo@digest made with key.
func (tr *Registry) Sign(t testing.TB, repo, digest string, keys ...crypto.Signer) {
	t.Helper()
	var layers []Layer
	for _, k := range keys {
		p := Payload(tr.Host+"/"+repo, digest)
		layers = append(layers, Layer{Payload: p, Annotations: map[string]string{"dev.cosignproject.cosign/signature": SignWith(t, k, p)}})
	}
	tr.Attach(t, repo, digest, layers...)
}

// ECKey generates an ECDSA key.
func ECKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// PubPEM is the PEM public key of k.
func PubPEM(t testing.TB, k crypto.Signer) string {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// KeyAttestor is an attestor trusting keys, with the transparency log ignored.
func KeyAttestor(t testing.TB, name string, keys ...crypto.Signer) *policy.Attestor {
	a := &policy.Attestor{TypeMeta: policy.TypeMeta{APIVersion: policy.APIVersion, Kind: policy.KindAttestor}, Metadata: policy.ObjectMeta{Name: name}}
	for _, k := range keys {
		a.Spec.PublicKeys = append(a.Spec.PublicKeys, PubPEM(t, k))
	}
	a.Spec.TransparencyLog = "ignore"
	return a
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// Copy copies the image or manifest at from to the tag to, as crane copy does.
func (tr *Registry) Copy(t testing.TB, from, to string) {
	t.Helper()
	src, err := name.ParseReference(from)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.NewTag(to)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
}

// Attest attaches a cosign attestation (a DSSE envelope around an in-toto
// statement about repo@digest) signed with key, as `cosign attest` does.
func (tr *Registry) Attest(t testing.TB, repo, digest string, key crypto.Signer, predicateType string, predicate any) {
	t.Helper()
	algo, hexPart, _ := strings.Cut(digest, ":")
	st, err := json.Marshal(map[string]any{
		"_type": "https://in-toto.io/Statement/v0.1", "predicateType": predicateType,
		"subject":   []map[string]any{{"name": tr.Host + "/" + repo, "digest": map[string]string{algo: hexPart}}},
		"predicate": predicate,
	})
	if err != nil {
		t.Fatal(err)
	}
	const payloadType = "application/vnd.in-toto+json"
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(st), st)
	env, _ := json.Marshal(map[string]any{
		"payloadType": payloadType, "payload": base64.StdEncoding.EncodeToString(st),
		"signatures": []map[string]string{{"keyid": "", "sig": SignWith(t, key, []byte(pae))}},
	})
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       static.NewLayer(env, "application/vnd.dsse.envelope.v1+json"),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": "", "predicateType": predicateType},
	})
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(fmt.Sprintf("%s/%s:%s-%s.att", tr.Host, repo, algo, hexPart))
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
}
