package attestation

import (
	"errors"
	"fmt"
)

// Outcome classifies one attestor's result for one image.
type Outcome int

// Outcomes.
const (
	Verified     Outcome = iota
	NotVerified          // verification failed: the image is not vouched for (a deny)
	Unverifiable         // verification could not be done: transport, timeout, auth
)

func (o Outcome) String() string {
	switch o {
	case Verified:
		return "verified"
	case NotVerified:
		return "not verified"
	}
	return "could not verify"
}

// AttestorResult is one attestor's verdict on one image.
type AttestorResult struct {
	Attestor string
	Outcome  Outcome
	Reason   string // why not verified or not verifiable; empty when verified
}

// Result is the verification of one image against a set of attestors.
type Result struct {
	Image     string
	Digest    string // resolved digest; empty when it could not be resolved
	Attestors []AttestorResult
	Stale     bool // served from cache past its TTL because the registry failed
	// Vuln is the vulnerability attestation outcome, when scan attestors were
	// given.
	Vuln *VulnAttestation
}

// VerificationError says an image is not signed as required: a deny.
type VerificationError struct{ Reason string }

func (e *VerificationError) Error() string { return e.Reason }

// UnverifiableError says a verification could not be done at all.
type UnverifiableError struct {
	Reason string
	Err    error
}

func (e *UnverifiableError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Reason, e.Err)
	}
	return e.Reason
}

func (e *UnverifiableError) Unwrap() error { return e.Err }

// outcomeOf maps an error from fetching or verifying onto an outcome.
func outcomeOf(err error) (Outcome, string) {
	var ve *VerificationError
	if errors.As(err, &ve) {
		return NotVerified, ve.Reason
	}
	return Unverifiable, err.Error()
}
