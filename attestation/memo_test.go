package attestation_test

import (
	"crypto/elliptic"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/workload"
)

// TestRegistryAnswersRemembered: what a registry says about itself (its
// ping, whether it serves the referrers API) is asked once per registry and
// remembered for minutes, and the payload `cosign sign` writes by default is
// known by its digest, not fetched. A cold image after the first on a
// registry costs the signature manifest and the referrers listing: two
// requests, one round trip.
func TestRegistryAnswersRemembered(t *testing.T) {
	k := at.ECKey(t, elliptic.P256())
	for _, tc := range []struct {
		name     string
		opts     []at.RegistryOption
		listing  string // the kind of request that lists referrers
		unwanted string // the one that must not be made once known
	}{
		{"without referrers API", nil, "tag", "referrers"},
		{"with referrers API", []at.RegistryOption{at.WithReferrers()}, "referrers", "tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := at.NewRegistry(t, tc.opts...)
			var now atomic.Int64
			now.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
			v := newVerifier(t, attestation.WithClock(func() time.Time { return time.Unix(0, now.Load()) }))
			cold := func(repo string, annotated bool) []string {
				t.Helper()
				ref, d := reg.Push(t, repo, "v1")
				if annotated {
					p := []byte(strings.Replace(string(at.Payload(reg.Host+"/"+repo, d)), `"optional":null`, `"optional":{"team":"a"}`, 1))
					reg.Attach(t, repo, d, at.Layer{Payload: p, Annotations: map[string]string{"dev.cosignproject.cosign/signature": at.SignWith(t, k, p)}})
				} else {
					reg.Sign(t, repo, d, k)
				}
				reg.Reset()
				r := verify(t, v, strings.TrimSuffix(ref, ":v1")+"@"+d, at.KeyAttestor(t, "ci", k))
				if o, why := outcome(r, "ci"); o != attestation.Verified {
					t.Fatalf("%s: %v %s", repo, o, why)
				}
				return reg.Requests()
			}
			// count counts the requests of one kind: ping, referrers (the
			// API), tag (the referrers tag fallback), sig, blob.
			count := func(reqs []string, kind string) int {
				n := 0
				for _, r := range reqs {
					k := "other"
					switch {
					case r == "GET /v2/":
						k = "ping"
					case strings.Contains(r, "/referrers/"):
						k = "referrers"
					case strings.Contains(r, "/blobs/"):
						k = "blob"
					case strings.HasSuffix(r, ".sig"):
						k = "sig"
					case strings.Contains(r, "/manifests/sha256-"):
						k = "tag"
					}
					if k == kind {
						n++
					}
				}
				return n
			}

			first := cold("first", false)
			if count(first, "ping") != 1 || count(first, "blob") != 0 {
				t.Errorf("first image: %q, want one ping and no blob", first)
			}
			second := cold("second", false)
			if len(second) != 2 || count(second, "sig") != 1 || count(second, tc.listing) != 1 || count(second, tc.unwanted) != 0 {
				t.Errorf("second image: %q, want the .sig manifest and %s only", second, tc.listing)
			}
			// A payload cosign did not write by default is fetched.
			annotated := cold("annotated", true)
			if len(annotated) != 3 || count(annotated, "blob") != 1 {
				t.Errorf("annotated payload: %q, want its blob fetched too", annotated)
			}
			// Past the memory's lifetime the registry is asked again.
			now.Add(int64(6 * time.Minute))
			later := cold("later", false)
			if count(later, "ping") != 1 || count(later, "referrers") != 1 {
				t.Errorf("after 6 minutes: %q, want a ping and the referrers API asked again", later)
			}
		})
	}
}

// TestPingForgottenOnRefusal: a registry that starts asking for credentials
// after its anonymous ping was remembered is pinged again at the next
// image, not judged with the stale answer for minutes.
func TestPingForgottenOnRefusal(t *testing.T) {
	k := at.ECKey(t, elliptic.P256())
	reg := at.NewRegistry(t)
	v := newVerifier(t)
	image := func(repo string) string {
		ref, d := reg.Push(t, repo, "v1")
		reg.Sign(t, repo, d, k)
		return strings.TrimSuffix(ref, ":v1") + "@" + d
	}
	one, two, three := image("one"), image("two"), image("three")
	if o, why := outcome(verify(t, v, one, at.KeyAttestor(t, "ci", k)), "ci"); o != attestation.Verified {
		t.Fatalf("one: %v %s", o, why)
	}
	var locked atomic.Bool
	locked.Store(true)
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !locked.Load() {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="imagegate-test"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	})
	if o, _ := outcome(verify(t, v, two, at.KeyAttestor(t, "ci", k)), "ci"); o != attestation.Unverifiable {
		t.Fatalf("two, registry refusing: %v, want could not verify", o)
	}
	reg.Reset()
	_ = verify(t, v, three, at.KeyAttestor(t, "ci", k))
	pinged := false
	for _, r := range reg.Requests() {
		pinged = pinged || r == "GET /v2/"
	}
	if !pinged {
		t.Errorf("after a refusal the next image was not pinged: %q", reg.Requests())
	}
}

// TestHTTPSPingNotRepeated: go-containerregistry pings a registry that may
// speak plain HTTP (here: loopback) over HTTPS too, from every new registry
// client — one per admission with a pod's own credentials. A TLS handshake
// bound to fail costs more than the rest of a tag's resolution; it is tried
// once, then remembered.
func TestHTTPSPingNotRepeated(t *testing.T) {
	reg := at.NewRegistry(t)
	ref, _ := reg.Push(t, "app", "v1")
	var https atomic.Int64
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Scheme == "https" {
			https.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	v := newVerifier(t, attestation.WithTransport(rt))
	creds := attestation.Credentials{Keychain: authn.NewMultiKeychain(authn.DefaultKeychain), ID: "ns/default/"}
	for i := range 3 {
		d, err := v.Resolve(t.Context(), creds, workload.ParseImage(ref))
		if err != nil || d == "" {
			t.Fatalf("resolution %d: %q %v", i, d, err)
		}
	}
	if n := https.Load(); n != 1 {
		t.Errorf("%d HTTPS attempts for 3 resolutions by new registry clients, want 1", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
