// Package imagebuild builds imagegate's container image without a container
// daemon: the static binary cross-compiled per platform, on nothing (no base
// image, no shell), with CA certificates, a nonroot user (65532) and an SPDX
// SBOM of the Go modules, as a multi-platform OCI image index, written as an
// OCI layout and optionally pushed. Everything that goes into it has fixed
// timestamps, owners and order, so one commit gives one digest.
package imagebuild
