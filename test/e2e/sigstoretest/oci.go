package sigstoretest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Annotations of a layer of cosign's signature image.
const (
	AnnSignature   = "dev.cosignproject.cosign/signature"
	AnnCertificate = "dev.sigstore.cosign/certificate"
	AnnChain       = "dev.sigstore.cosign/chain"
	AnnBundle      = "dev.sigstore.cosign/bundle"
	AnnTimestamp   = "dev.sigstore.cosign/rfc3161timestamp"
	// SimpleSigningMediaType is the media type of a signature layer.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// BundleMediaType is the media type of a v0.3 Sigstore bundle.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// LegacySig is one layer of a sha256-<hex>.sig image. Fields are the raw
// annotation values, so a case can put anything there.
type LegacySig struct {
	Payload   []byte
	Signature string // base64
	Cert      []byte // PEM
	Chain     []byte // PEM, intermediates then root
	Bundle    []byte // the Rekor bundle JSON
	Timestamp []byte // RFC 3161 response, DER
}

// PushLegacy writes sigs as the signature image of repo@digest, where
// cosign sign stores them: the tag sha256-<hex>.sig, one layer each.
func PushLegacy(repo name.Repository, digest string, sigs ...LegacySig) error {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, s := range sigs {
		ann := map[string]string{AnnSignature: s.Signature}
		if s.Cert != nil {
			ann[AnnCertificate] = string(s.Cert)
			ann[AnnChain] = string(s.Chain)
		}
		if s.Bundle != nil {
			ann[AnnBundle] = string(s.Bundle)
		}
		if s.Timestamp != nil {
			ts, err := json.Marshal(struct{ SignedRFC3161Timestamp []byte }{s.Timestamp})
			if err != nil {
				return err
			}
			ann[AnnTimestamp] = string(ts)
		}
		var err error
		img, err = mutate.Append(img, mutate.Addendum{
			Layer: static.NewLayer(s.Payload, SimpleSigningMediaType), Annotations: ann})
		if err != nil {
			return err
		}
	}
	return remote.Write(repo.Tag(strings.Replace(digest, ":", "-", 1)+".sig"), img)
}

// rawManifest is a manifest pushed exactly as given.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// PushReferrer attaches content (one layer of media type layerType) to
// repo@digest as an OCI 1.1 referrer of artifactType, the way cosign
// attaches bundles: an empty config and a subject. On a registry without
// the referrers API (distribution 2.8), go-containerregistry also adds it
// to the sha256-<hex> referrers tag index, as cosign does.
func PushReferrer(repo name.Repository, digest, artifactType, layerType string, content []byte) error {
	subject, err := remote.Head(repo.Digest(digest))
	if err != nil {
		return fmt.Errorf("subject %s: %w", digest, err)
	}
	config := static.NewLayer([]byte("{}"), "application/vnd.oci.empty.v1+json")
	layer := static.NewLayer(content, types.MediaType(layerType))
	var descs []v1.Descriptor
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(repo, l); err != nil {
			return err
		}
		d, _ := l.Digest()
		s, _ := l.Size()
		mt, _ := l.MediaType()
		descs = append(descs, v1.Descriptor{MediaType: mt, Digest: d, Size: s})
	}
	m := struct {
		v1.Manifest
		ArtifactType string `json:"artifactType,omitempty"`
	}{v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: descs[0], Layers: descs[1:],
		Subject:     &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: map[string]string{"dev.sigstore.bundle.content": "dsse-envelope", "dev.sigstore.bundle.predicateType": CosignSignPredicate}},
		artifactType}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return remote.Put(repo.Digest(h.String()), rawManifest{raw, types.OCIManifestSchema1})
}

// Hex is lower-case hexadecimal.
func Hex(b []byte) string { return fmt.Sprintf("%x", b) }
