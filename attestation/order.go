package attestation

import (
	"slices"
	"sync/atomic"
)

// The order in which attestors try an image's signatures. It never decides
// a verdict (every signature is still tried until one verifies); it keeps
// n attestors over n signatures near n library verifications.

// owner remembers which key a signature verified with, shared by the
// attestors checking one image: a signature another key verified cannot be
// this key's, so n attestors over n signatures cost about n library
// verifications, not n²/2. It caches the libraries' verdicts; it decides
// nothing they did not. trying counts the attestors verifying the signature
// at the moment, which only orders the others' attempts (see pick).
type owner struct {
	key    atomic.Pointer[string]
	trying atomic.Int32
}

// skip reports a key candidate that cannot have made a signature another
// key verified.
func skip(o *owner, fp string) bool {
	if o == nil || fp == "" {
		return false
	}
	known := o.key.Load()
	return known != nil && *known != fp
}

func own(o *owner, fp string) {
	if o != nil && fp != "" {
		o.key.Store(&fp)
	}
}

// pick is the next of an image's signatures for an attestor to try, going
// round from start: the first not yet tried of the lowest rank (nil: all
// equal, see ranks) that no other attestor is verifying at the moment, else
// of that rank the first not yet tried. A signature another attestor is
// verifying is most likely that attestor's (attestors start at different
// signatures), and by the time the others have been tried it is either
// proven another key's (no library call) or free again. It returns -1 when
// every signature has been tried. The order decides nothing: every signature
// is still tried until one verifies.
func pick(owners []owner, rank []uint8, tried []bool, start int) int {
	n, best, bestScore := len(owners), -1, 0
	for j := range n {
		i := (start + j) % n
		if tried[i] {
			continue
		}
		score := 0
		if rank != nil {
			score = 2 * int(rank[i])
		}
		if owners[i].trying.Load() > 0 {
			score++
		}
		if best < 0 || score < bestScore {
			best, bestScore = i, score
		}
		if score == 0 {
			break
		}
	}
	return best
}

// ranks orders an image's bundles for this attestor by the key each names:
// first those naming one of its keys, then those naming none, last those
// naming another key.
func (v *verifier) ranks(bundles []sigBundle) []uint8 {
	out := make([]uint8, len(bundles))
	for i, b := range bundles {
		switch {
		case b.keyHint == "":
			out[i] = 1
		case !slices.Contains(v.fps, b.keyHint):
			out[i] = 2
		}
	}
	return out
}
