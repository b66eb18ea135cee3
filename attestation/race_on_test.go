//go:build race

package attestation_test

// raceDetector: the race detector allocates on its own, so allocation
// counts are not asserted under it.
const raceDetector = true
