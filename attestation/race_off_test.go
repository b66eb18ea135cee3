//go:build !race

package attestation_test

const raceDetector = false
