package attestation_test

import (
	"crypto/elliptic"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// TestSignatureManifestShapes: the .sig manifest is parsed once and its
// payload blobs read from the repository, checked against the manifest's
// digest and size; an index still resolves to its platform image, as
// cosign's reader does; a descriptor's foreign URLs are never followed.
func TestSignatureManifestShapes(t *testing.T) {
	k := at.ECKey(t, elliptic.P256())
	elsewhere := new(atomic.Int64)
	for _, tc := range []struct {
		name string
		// write stores the signature image for repo@digest whose payload
		// (with signature sig) is p, in its own way.
		write  func(t *testing.T, reg *at.Registry, repo name.Repository, tag string, p []byte, sig string)
		want   attestation.Outcome
		reason string
	}{
		{"index of a platform image", writeSigIndex, attestation.Verified, ""},
		{"declared size differs from the blob", func(t *testing.T, reg *at.Registry, repo name.Repository, tag string, p []byte, sig string) {
			d := writeBlob(t, repo, p)
			d["size"] = len(p) + 1
			putManifest(t, repo.Tag(tag), sigManifest(t, repo, d, sig), types.OCIManifestSchema1)
		}, attestation.NotVerified, "the manifest says"},
		{"blob absent, foreign URL offered", func(t *testing.T, reg *at.Registry, repo name.Repository, tag string, p []byte, sig string) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				elsewhere.Add(1)
				_, _ = w.Write(p)
			}))
			t.Cleanup(srv.Close)
			h, n, _ := v1.SHA256(strings.NewReader(string(p)))
			d := map[string]any{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": h.String(), "size": n,
				"urls": []string{srv.URL + "/payload"}}
			putManifest(t, repo.Tag(tag), sigManifest(t, repo, d, sig), types.OCIManifestSchema1)
		}, attestation.NotVerified, "fetching a signature payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := at.NewRegistry(t)
			_, d := reg.Push(t, "app", "v1")
			repo, _ := name.NewRepository(reg.Host + "/app")
			// Annotated, so the payload is not the one cosign writes by
			// default, which is never fetched (TestRegistryAnswersRemembered).
			p := []byte(strings.Replace(string(at.Payload(reg.Host+"/app", d)), `"optional":null`, `"optional":{"team":"a"}`, 1))
			tc.write(t, reg, repo, strings.Replace(d, ":", "-", 1)+".sig", p, at.SignWith(t, k, p))
			elsewhere.Store(0)
			v, _ := attestation.New()
			r := v.Verify(t.Context(), workload.ParseImage(reg.Host+"/app@"+d), []*policy.Attestor{at.KeyAttestor(t, "ci", k)})
			got := r.Attestors[0]
			if got.Outcome != tc.want || !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("got %v %q, want %v containing %q", got.Outcome, got.Reason, tc.want, tc.reason)
			}
			if n := elsewhere.Load(); n != 0 {
				t.Errorf("%d requests to a foreign URL", n)
			}
		})
	}
}

// writeSigIndex stores the signature image under an OCI index, as a
// platform image for linux/amd64.
func writeSigIndex(t *testing.T, reg *at.Registry, repo name.Repository, tag string, p []byte, sig string) {
	m := sigManifest(t, repo, writeBlob(t, repo, p), sig)
	h, n, _ := v1.SHA256(strings.NewReader(string(m)))
	putManifest(t, repo.Digest(h.String()), m, types.OCIManifestSchema1)
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": types.OCIImageIndex, "manifests": []any{map[string]any{
		"mediaType": types.OCIManifestSchema1, "digest": h.String(), "size": n,
		"platform": map[string]string{"os": "linux", "architecture": "amd64"}}}})
	putManifest(t, repo.Tag(tag), idx, types.OCIImageIndex)
}

// writeBlob uploads p and returns its layer descriptor.
func writeBlob(t *testing.T, repo name.Repository, p []byte) map[string]any {
	l := static.NewLayer(p, "application/vnd.dev.cosign.simplesigning.v1+json")
	if err := remote.WriteLayer(repo, l); err != nil {
		t.Fatal(err)
	}
	h, _ := l.Digest()
	return map[string]any{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": h.String(), "size": len(p)}
}

// sigManifest is a .sig image manifest with one layer, described by layer,
// carrying the signature annotation.
func sigManifest(t *testing.T, repo name.Repository, layer map[string]any, sig string) []byte {
	cfg := static.NewLayer([]byte("{}"), types.OCIConfigJSON)
	if err := remote.WriteLayer(repo, cfg); err != nil {
		t.Fatal(err)
	}
	h, _ := cfg.Digest()
	layer["annotations"] = map[string]string{"dev.cosignproject.cosign/signature": sig}
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": types.OCIManifestSchema1,
		"config": map[string]any{"mediaType": types.OCIConfigJSON, "digest": h.String(), "size": 2}, "layers": []any{layer}})
	return m
}

func putManifest(t *testing.T, ref name.Reference, m []byte, mt types.MediaType) {
	if err := remote.Put(ref, rawManifest{m, mt}); err != nil {
		t.Fatal(err)
	}
}

type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.b, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }
