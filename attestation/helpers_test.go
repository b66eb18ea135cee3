package attestation_test

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

// testRegistry is an in-process OCI registry that counts requests and can be
// made to misbehave.
type testRegistry struct {
	*httptest.Server
	host string

	mu       sync.Mutex
	requests []string
	fault    func(w http.ResponseWriter, r *http.Request) bool // true: handled
}

func newRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	inner := registry.New(registry.Logger(nopLogger()))
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
	tr.host = strings.TrimPrefix(tr.URL, "http://")
	return tr
}

func (tr *testRegistry) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	tr.fault = f
	tr.mu.Unlock()
}

// count returns how many requests matched substr, and forgets them all.
func (tr *testRegistry) count(substr string) int {
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

func (tr *testRegistry) reset() {
	tr.mu.Lock()
	tr.requests = nil
	tr.mu.Unlock()
}

// push writes a random image and returns its reference by tag and its digest.
func (tr *testRegistry) push(t *testing.T, repo, tag string) (string, string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := fmt.Sprintf("%s/%s:%s", tr.host, repo, tag)
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref, d.String()
}

// payload is cosign's simple signing document for a digest.
func payload(repo, digest string) []byte {
	return []byte(fmt.Sprintf(`{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, repo, digest))
}

// sigLayer is one cosign signature: a payload and annotations.
type sigLayer struct {
	payload     []byte
	annotations map[string]string
}

// signWith signs a payload as cosign does with a key.
func signWith(t *testing.T, key crypto.Signer, p []byte) string {
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

// attach writes the signature image for digest in repo with the given layers.
func (tr *testRegistry) attach(t *testing.T, repo, digest string, layers ...sigLayer) {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	for _, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:       static.NewLayer(l.payload, "application/vnd.dev.cosign.simplesigning.v1+json"),
			Annotations: l.annotations,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tag, _ := name.NewTag(fmt.Sprintf("%s/%s:%s.sig", tr.host, repo, strings.Replace(digest, ":", "-", 1)))
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
}

// sign attaches a cosign key signature of repo@digest made with key.
func (tr *testRegistry) sign(t *testing.T, repo, digest string, keys ...crypto.Signer) {
	t.Helper()
	var layers []sigLayer
	for _, k := range keys {
		p := payload(tr.host+"/"+repo, digest)
		layers = append(layers, sigLayer{payload: p, annotations: map[string]string{"dev.cosignproject.cosign/signature": signWith(t, k, p)}})
	}
	tr.attach(t, repo, digest, layers...)
}

func ecKey(t *testing.T, curve elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubPEM(t *testing.T, k crypto.Signer) string {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func keyAttestor(t *testing.T, name string, keys ...crypto.Signer) *policy.Attestor {
	a := &policy.Attestor{TypeMeta: policy.TypeMeta{APIVersion: policy.APIVersion, Kind: policy.KindAttestor}, Metadata: policy.ObjectMeta{Name: name}}
	for _, k := range keys {
		a.Spec.PublicKeys = append(a.Spec.PublicKeys, pubPEM(t, k))
	}
	a.Spec.TransparencyLog = "ignore"
	return a
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
