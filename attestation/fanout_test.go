package attestation_test

import (
	"context"
	"crypto/elliptic"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// inFlight counts the distinct images (digests) whose requests a registry
// holds at once, per repository and in all.
type inFlight struct {
	mu             sync.Mutex
	now            map[string]int // repo@digest -> requests held
	maxAll         int
	maxRepo        map[string]int
	perRepoNow     map[string]map[string]bool
	distinctDigest *regexp.Regexp
}

func newInFlight() *inFlight {
	return &inFlight{now: map[string]int{}, maxRepo: map[string]int{}, perRepoNow: map[string]map[string]bool{},
		distinctDigest: regexp.MustCompile(`^/v2/([^/]+)/.*sha256[-:]([0-9a-f]{64})`)}
}

func (f *inFlight) enter(path string) (leave func(), ok bool) {
	m := f.distinctDigest.FindStringSubmatch(path)
	if m == nil {
		return nil, false
	}
	repo, key := m[1], m[1]+"@"+m[2]
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now[key]++
	if f.perRepoNow[repo] == nil {
		f.perRepoNow[repo] = map[string]bool{}
	}
	f.perRepoNow[repo][key] = true
	f.maxAll = max(f.maxAll, len(f.now))
	f.maxRepo[repo] = max(f.maxRepo[repo], len(f.perRepoNow[repo]))
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.now[key]--; f.now[key] == 0 {
			delete(f.now, key)
			delete(f.perRepoNow[repo], key)
		}
	}, true
}

func (f *inFlight) current() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.now)
}

// Pods with many images are fetched a few images at a time, within a
// global bound, and a normal pod beside them is verified while they wait:
// 3 pods × 2 workers beyond their first want more than the 4 shared slots.
func TestFanOutIsBounded(t *testing.T) {
	const perRequest, total, images = 3, 4, 40
	reg := at.NewRegistry(t)
	k := at.ECKey(t, elliptic.P256())
	small, d := reg.Push(t, "small", "v1")
	reg.Sign(t, "small", d, k)
	flights := newInFlight()
	gate := make(chan struct{})
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/v2/big") {
			return false
		}
		if leave, ok := flights.enter(r.URL.Path); ok {
			defer leave()
		}
		<-gate
		return false
	})
	// An image's fetch is up to three requests at once (.sig, referrers API,
	// referrers tag): the registry limit must not be what bounds the pods.
	v := newVerifier(t, attestation.WithFetchConcurrency(total, perRequest), attestation.WithRegistryConcurrency(32))
	src := attestation.NewSource(v, nil)
	atts := []*policy.Attestor{at.KeyAttestor(t, "ci", k)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for r := range 3 {
		var imgs []workload.Image
		for i := range images {
			imgs = append(imgs, workload.ParseImage(fmt.Sprintf("%s/big%d@sha256:%064x", reg.Host, r, i)))
		}
		wg.Go(func() {
			if _, err := src.Facts(ctx, facts.Request{Images: imgs, Attestors: atts}); err != nil {
				t.Error(err)
			}
		})
	}
	// Each pod fetches one image on its own account, the others from the
	// shared pool of total.
	for deadline := time.Now().Add(20 * time.Second); flights.current() < total+3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	// The three big pods hold every fetch slot they may; a normal pod's
	// image is still fetched and verified.
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	fs, err := src.Facts(sctx, facts.Request{Images: []workload.Image{workload.ParseImage(small)}, Attestors: atts})
	scancel()
	if err != nil || len(fs[0].Attestors) != 1 {
		t.Errorf("normal pod beside the big ones: %v %+v", err, fs)
	}
	close(gate)
	wg.Wait()
	flights.mu.Lock()
	defer flights.mu.Unlock()
	if flights.maxAll > total+3 {
		t.Errorf("%d images fetched at once, want at most %d", flights.maxAll, total+3)
	}
	for repo, n := range flights.maxRepo {
		if n > perRequest {
			t.Errorf("%s: %d images fetched at once, want at most %d", repo, n, perRequest)
		}
	}
}
