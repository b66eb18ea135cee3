// Package attestation verifies that images carry cosign signatures from the
// attestors policies require.
//
// For an image it resolves the digest, fetches the image's signatures once
// (cosign's sha256-<digest>.sig tag) and verifies every attestor locally
// against them, so registry requests per image do not grow with the number
// of attestors. Results are cached by (digest, attestor definition) with a
// TTL, a short negative TTL and stale-if-error; concurrent requests for one
// image share one fetch. Outcomes are typed: Verified, NotVerified (a deny:
// no signature, wrong key, bad payload, digest mismatch) and Unverifiable
// (could not check: unreachable, timeout, auth).
package attestation
