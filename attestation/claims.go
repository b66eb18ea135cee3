package attestation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// simpleSigningClaims is cosign's claim check for image signatures (the
// payload names this digest) and, stricter than cosign, requires the
// simple-signing type: a payload of another kind signed by the same key is
// not an image signature.
func simpleSigningClaims(sig oci.Signature, h v1.Hash, _ map[string]any) error {
	p, err := sig.Payload()
	if err != nil {
		return err
	}
	ss, err := decodeSimpleSigning(p)
	return checkSimpleSigning(ss, err, h)
}

func decodeSimpleSigning(p []byte) (*payload.SimpleContainerImage, error) {
	var ss payload.SimpleContainerImage
	if err := json.Unmarshal(p, &ss); err != nil {
		return nil, &claimError{reason: "bad signature payload: not a cosign simple signing document"}
	}
	return &ss, nil
}

// checkSimpleSigning is cosign.SimpleClaimVerifier's check, on a payload
// already decoded (it would decode it again: a quarter of a verification's
// CPU), and the type check.
func checkSimpleSigning(ss *payload.SimpleContainerImage, decodeErr error, h v1.Hash) error {
	if decodeErr != nil {
		return decodeErr
	}
	if got := ss.Critical.Image.DockerManifestDigest; got != h.String() {
		return &claimError{reason: fmt.Sprintf("signature is for another image digest (%s): digest mismatch", got), digest: true}
	}
	if ss.Critical.Type != payload.CosignSignatureType {
		return &claimError{reason: fmt.Sprintf("bad signature payload: type %q is not %q", ss.Critical.Type, payload.CosignSignatureType)}
	}
	return nil
}

// sharedClaims is one payload blob's simple-signing document, decoded once
// for all the layers that sign that blob (every signer of an image signs
// the same payload) and all the attestors checking them. It is consulted
// only after cosign verified the signature over the payload, and only for
// those very bytes.
type sharedClaims struct {
	payload []byte
	once    sync.Once
	ss      *payload.SimpleContainerImage
	err     error
}

// verify is simpleSigningClaims with the decoding shared.
func (c *sharedClaims) verify(sig oci.Signature, h v1.Hash, _ map[string]any) error {
	p, err := sig.Payload()
	if err != nil {
		return err
	}
	if !bytes.Equal(p, c.payload) {
		return simpleSigningClaims(sig, h, nil)
	}
	c.once.Do(func() { c.ss, c.err = decodeSimpleSigning(c.payload) })
	return checkSimpleSigning(c.ss, c.err, h)
}

// claimError is a signature that verified but does not vouch for this image.
type claimError struct {
	reason string
	digest bool
}

func (e *claimError) Error() string { return e.reason }
