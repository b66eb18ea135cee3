// Package facts defines what imagegate knows about an image when it decides:
// its digest, the attestors whose signatures verified (and why others did
// not), and its scan result. Facts come from a file (imagegate check --facts),
// and later from the attestation and scan packages; the rego engine turns them
// into decisions.
package facts
