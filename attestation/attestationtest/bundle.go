package attestationtest

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media and predicate types of cosign's --new-bundle-format signatures.
const (
	BundleMediaType   = "application/vnd.dev.sigstore.bundle.v0.3+json"
	SignPredicateType = "https://sigstore.dev/cosign/sign/v1"
)

// Statement is an in-toto v1 statement about digest with predicateType.
func Statement(digest, predicateType string) []byte {
	algo, hexPart, _ := strings.Cut(digest, ":")
	b, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []map[string]any{{"digest": map[string]string{algo: hexPart}}},
		"predicateType": predicateType,
	})
	return b
}

// Bundle is a Sigstore bundle (v0.3) whose DSSE envelope holds statement,
// signed with key; extra is merged into verificationMaterial.
func Bundle(t testing.TB, key crypto.Signer, statement []byte, extra map[string]any) []byte {
	t.Helper()
	const payloadType = "application/vnd.in-toto+json"
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(statement), statement)
	vm := map[string]any{"publicKey": map[string]string{"hint": ""}}
	for k, v := range extra {
		vm[k] = v
	}
	b, err := json.Marshal(map[string]any{
		"mediaType":            BundleMediaType,
		"verificationMaterial": vm,
		"dsseEnvelope": map[string]any{
			"payload": base64.StdEncoding.EncodeToString(statement), "payloadType": payloadType,
			"signatures": []map[string]string{{"sig": SignWith(t, key, []byte(pae))}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SignBundle signs repo@digest as `cosign sign --new-bundle-format` does.
func (tr *Registry) SignBundle(t testing.TB, repo, digest string, key crypto.Signer) {
	t.Helper()
	tr.AttachBundle(t, repo, digest, Bundle(t, key, Statement(digest, SignPredicateType), nil))
}

// AttachBundle stores bundle as an OCI 1.1 referrer of repo@digest: through
// the referrers API when the registry has it, else under the fallback tag.
func (tr *Registry) AttachBundle(t testing.TB, repo, digest string, bundle []byte) {
	t.Helper()
	r, err := name.NewRepository(tr.Host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	layer := static.NewLayer(bundle, types.MediaType(BundleMediaType))
	config := static.NewLayer([]byte("{}"), "application/vnd.oci.empty.v1+json")
	for _, l := range []v1.Layer{layer, config} {
		if err := remote.WriteLayer(r, l); err != nil {
			t.Fatal(err)
		}
	}
	desc := func(l v1.Layer) map[string]any {
		d, _ := l.Digest()
		sz, _ := l.Size()
		mt, _ := l.MediaType()
		return map[string]any{"mediaType": mt, "digest": d.String(), "size": sz}
	}
	subject, err := remote.Head(r.Digest(digest))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "artifactType": BundleMediaType,
		"config": desc(config), "layers": []any{desc(layer)},
		"subject": map[string]any{"mediaType": subject.MediaType, "digest": subject.Digest.String(), "size": subject.Size},
	})
	h, _, _ := v1.SHA256(strings.NewReader(string(m)))
	if err := remote.Put(r.Digest(h.String()), rawManifest{m, types.OCIManifestSchema1}); err != nil {
		t.Fatal(err)
	}
}

type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.b, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }
