package bundle

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	cremote "github.com/sigstore/cosign/v2/pkg/cosign/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/signature"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// LoadKey reads a private key made by `cosign generate-key-pair`, decrypted
// with password (the CLI takes it from COSIGN_PASSWORD).
func LoadKey(path string, password []byte) (signature.SignerVerifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sv, err := cosign.LoadPrivateKey(b, password, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (a key of cosign generate-key-pair; its password in COSIGN_PASSWORD)", path, err)
	}
	return sv, nil
}

// Sign attaches a cosign signature of d made with sv, as `cosign sign --key
// --tlog-upload=false` does: a simple-signing payload naming d, signed, under
// the sha256-<digest>.sig tag beside the signatures already there. No
// transparency log entry is made; attestors checking bundles keep
// transparencyLog optional or ignore. d comes from Push or ParseRef, which
// decide whether the registry is reached over plain HTTP.
func Sign(ctx context.Context, d name.Digest, sv signature.SignerVerifier, opts ...Option) error {
	o := apply(opts)
	p, err := (&payload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		return fmt.Errorf("signature payload: %w", err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(p), sigopts.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("signing %s: %w", d, err)
	}
	ociSig, err := static.NewSignature(p, base64.StdEncoding.EncodeToString(sig))
	if err != nil {
		return err
	}
	ro := ociremote.WithRemoteOptions(append([]remote.Option{remote.WithContext(ctx)}, o.remote...)...)
	se, err := mutate.AttachSignatureToEntity(ociremote.SignedUnknown(d, ro), ociSig, mutate.WithDupeDetector(cremote.NewDupeDetector(sv)))
	if err != nil {
		return err
	}
	if err := ociremote.WriteSignatures(d.Repository, se, ro); err != nil {
		return fmt.Errorf("pushing the signature of %s: %w", d, err)
	}
	return nil
}
