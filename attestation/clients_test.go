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
// It returns the count of tokens handed out.
func tokenRegistry(reg *at.Registry) *atomic.Int64 {
	var tokens atomic.Int64
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "secret" {
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
				return true
			}
			tokens.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"token":"alice-token","expires_in":300}`)
			return true
		}
		if r.Header.Get("Authorization") == "Bearer alice-token" {
			return false
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, reg.Host))
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		return true
	})
	return &tokens
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
// other credentials get their own client; a refusal is not served again
// once the credentials are right; a minute later the credentials are read
// and a token fetched again.
func TestCredentialClientReused(t *testing.T) {
	reg := at.NewRegistry(t)
	ref, digest := reg.Push(t, "private", "v1")
	tokens := tokenRegistry(reg)
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

	kc.set("rotated-away")
	step("credentials refused", "late/default/pull", true, 2)
	kc.set("secret")
	step("same ID, credentials fixed", "late/default/pull", false, 3)

	clock.Lock()
	now = now.Add(2 * time.Minute)
	clock.Unlock()
	step("a minute later", "team/default/pull", false, 4)
}
