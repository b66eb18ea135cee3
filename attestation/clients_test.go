package attestation_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/workload"
)

// tokenRegistry makes reg hand out bearer tokens, as Docker Hub, GHCR or
// ECR do: /token gives one to alice's basic credentials, and /v2/ wants it.
// rotate changes alice's password and revokes the tokens handed out.
type tokenRegistry struct {
	tokens atomic.Int64 // handed out
	mu     sync.Mutex
	pass   string
	gen    int // tokens of older generations are refused
}

func newTokenRegistry(reg *at.Registry) *tokenRegistry {
	tr := &tokenRegistry{pass: "secret"}
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		tr.mu.Lock()
		pass, token := tr.pass, fmt.Sprintf("alice-token-%d", tr.gen)
		tr.mu.Unlock()
		if r.URL.Path == "/token" {
			if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != pass {
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
				return true
			}
			tr.tokens.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"token":%q,"expires_in":300}`, token)
			return true
		}
		if r.Header.Get("Authorization") == "Bearer "+token {
			return false
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, reg.Host))
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		return true
	})
	return tr
}

func (tr *tokenRegistry) rotate(pass string) {
	tr.mu.Lock()
	tr.pass, tr.gen = pass, tr.gen+1
	tr.mu.Unlock()
}

// switchKeychain is a pod's credentials whose password can change.
type switchKeychain struct {
	mu   sync.Mutex
	pass string
}

func (k *switchKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return &authn.Basic{Username: "alice", Password: k.pass}, nil
}

func (k *switchKeychain) set(p string) { k.mu.Lock(); k.pass = p; k.mu.Unlock() }

// TestCredentialClientReused: tags resolved one admission after another
// with one pod's credentials ask the token service once, not per admission;
// other credentials get their own client; when the secret is rotated and the
// old token and password revoked, the kept client fails at most once and is
// forgotten, so the next admission reads the new secret; a minute later the
// credentials are read and a token fetched again.
func TestCredentialClientReused(t *testing.T) {
	reg := at.NewRegistry(t)
	ref, digest := reg.Push(t, "private", "v1")
	tr := newTokenRegistry(reg)
	tokens := &tr.tokens
	now := time.Now()
	var clock sync.Mutex
	v := newVerifier(t, attestation.WithClock(func() time.Time { clock.Lock(); defer clock.Unlock(); return now }))
	kc := &switchKeychain{pass: "secret"}
	resolve := func(id string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, err := v.Resolve(ctx, attestation.Credentials{Keychain: kc, ID: id}, workload.ParseImage(ref))
		if err == nil && d != digest {
			return fmt.Errorf("resolved %s, want %s", d, digest)
		}
		return err
	}
	step := func(what, id string, wantErr bool, wantTokens int64) {
		t.Helper()
		if err := resolve(id); (err != nil) != wantErr {
			t.Fatalf("%s: error %v, want error %v", what, err, wantErr)
		}
		if n := tokens.Load(); n != wantTokens {
			t.Fatalf("%s: %d tokens handed out in all, want %d", what, n, wantTokens)
		}
	}
	step("first admission", "team/default/pull", false, 1)
	for i := range 5 {
		step(fmt.Sprintf("admission %d, same credentials", i+2), "team/default/pull", false, 1)
	}
	step("other credentials", "other/default/pull", false, 2)

	tr.rotate("rotated")
	kc.set("rotated")
	// The kept client holds the old password; it may fail once.
	if err := resolve("team/default/pull"); err == nil && tokens.Load() != 3 {
		t.Fatalf("after the rotation: resolved with %d tokens handed out, want 3", tokens.Load())
	}
	before := tokens.Load()
	step("the admission after the rotation", "team/default/pull", false, before+1)

	clock.Lock()
	now = now.Add(2 * time.Minute)
	clock.Unlock()
	step("a minute later", "team/default/pull", false, before+2)
}
