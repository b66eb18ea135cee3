package attestation_test

import (
	"context"
	"crypto/elliptic"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// With ImageAttestors, an image no policy governs (an empty entry) is not
// looked up at all, while the others are verified against their own
// attestors: a BinarySecurityPolicy's images globs keep third-party
// registries out of the admission path.
func TestSourceImageAttestors(t *testing.T) {
	reg := at.NewRegistry(t)
	key := at.ECKey(t, elliptic.P256())
	ci := at.KeyAttestor(t, "ci", key)
	own, digest := reg.Push(t, "own/app", "1")
	reg.Sign(t, "own/app", digest, key)
	third, _ := reg.Push(t, "thirdparty/tool", "1")
	var thirdPartyRequests atomic.Int32
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "thirdparty") {
			thirdPartyRequests.Add(1)
		}
		return false
	})
	src := attestation.NewSource(newVerifier(t), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fs, err := src.Facts(ctx, facts.Request{
		Images:         []workload.Image{workload.ParseImage(own), workload.ParseImage(third)},
		Attestors:      []*policy.Attestor{ci},
		ImageAttestors: [][]*policy.Attestor{{ci}, nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs[0].Attestors) != 1 {
		t.Errorf("own image: attestors %v, errors %v; want ci verified", fs[0].Attestors, fs[0].AttestorErrors)
	}
	if len(fs[1].Attestors) != 0 || len(fs[1].AttestorErrors) != 0 {
		t.Errorf("third-party image: %+v, want nothing checked", fs[1])
	}
	if n := thirdPartyRequests.Load(); n != 0 {
		t.Errorf("%d registry requests for the image no policy governs, want 0", n)
	}
}
