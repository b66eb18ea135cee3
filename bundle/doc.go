// Package bundle carries a policy set as a signed OCI artifact, so one
// registry reference serves every cluster.
//
// Pack turns a directory of policy files into an artifact (validated as a
// whole first: an invalid set is never pushed), Push writes it to a registry
// and Sign attaches a cosign signature made with the cosign library. A
// Source reads a bundle back: it resolves the reference to a digest, has the
// attestation package verify that digest's signature against an Attestor
// from local configuration (never one from the bundle), and only then reads
// the manifest and layers of exactly that digest, bounded in layers and
// bytes, and loads them as policy.LoadDir loads a directory. Watch polls for
// new digests; a bundle that is unsigned, signed by another key, tampered
// with or invalid is refused and the last good set stays in force.
package bundle
