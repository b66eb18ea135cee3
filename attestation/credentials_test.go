package attestation_test

import (
	"context"
	"crypto/elliptic"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/imagegate/imagegate/attestation"
	at "github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

type basicKeychain struct{ user, pass string }

func (k basicKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

// podKeychains gives pods of namespace "team" alice's credentials.
type podKeychains struct{ asked []string }

func (p *podKeychains) Keychain(namespace, account string, secrets []string) authn.Keychain {
	p.asked = append(p.asked, namespace+"/"+account+"/"+strings.Join(secrets, ","))
	if namespace != "team" {
		return nil
	}
	return basicKeychain{"alice", "secret"}
}

// requireAuth makes reg answer 401 to requests without alice's credentials.
func requireAuth(reg *at.Registry) {
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "alice" && p == "secret" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		return true
	})
}

func TestCheckWithCredentials(t *testing.T) {
	reg := at.NewRegistry(t)
	key := at.ECKey(t, elliptic.P256())
	ci := at.KeyAttestor(t, "ci", key)
	refs := map[string]string{}
	for _, tag := range []string{"none", "wrong", "right", "cached"} {
		ref, digest := reg.Push(t, "private", tag)
		reg.Sign(t, "private", digest, key)
		refs[tag] = ref
	}
	requireAuth(reg)
	v := newVerifier(t)
	cases := []struct {
		name, ref string
		creds     attestation.Credentials
		want      attestation.Outcome
		reason    string
	}{
		{"no credentials", refs["none"], attestation.Credentials{}, attestation.Unverifiable, "registry refused access (auth)"},
		{"wrong credentials", refs["wrong"], attestation.Credentials{Keychain: basicKeychain{"alice", "nope"}, ID: "wrong"}, attestation.Unverifiable, "registry refused access (auth)"},
		{"pod credentials", refs["right"], attestation.Credentials{Keychain: basicKeychain{"alice", "secret"}, ID: "right"}, attestation.Verified, ""},
		{"cached verdict reused without credentials", refs["right"], attestation.Credentials{}, attestation.Verified, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r := v.CheckWith(ctx, c.creds, workload.ParseImage(c.ref), []*policy.Attestor{ci}, nil)
			got, why := outcome(r, "ci")
			if got != c.want || !strings.Contains(why, c.reason) {
				t.Errorf("outcome %v (%q), want %v with %q", got, why, c.want, c.reason)
			}
		})
	}
}

func TestSourceUsesPodCredentials(t *testing.T) {
	reg := at.NewRegistry(t)
	key := at.ECKey(t, elliptic.P256())
	ci := at.KeyAttestor(t, "ci", key)
	ref, digest := reg.Push(t, "private", "app")
	reg.Sign(t, "private", digest, key)
	requireAuth(reg)
	ks := &podKeychains{}
	src := attestation.NewSource(newVerifier(t), nil, attestation.WithPodCredentials(ks))
	for _, c := range []struct {
		namespace string
		want      bool
	}{{"other", false}, {"team", true}} {
		t.Run(c.namespace, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			fs, err := src.Facts(ctx, facts.Request{Namespace: c.namespace, ServiceAccount: "builder", PullSecrets: []string{"regcred"},
				Images: []workload.Image{workload.ParseImage(ref)}, Attestors: []*policy.Attestor{ci}})
			if err != nil {
				t.Fatal(err)
			}
			verified := len(fs[0].Attestors) == 1
			if verified != c.want {
				t.Errorf("verified %v, want %v (errors %v)", verified, c.want, fs[0].AttestorErrors)
			}
			if !c.want && !strings.Contains(fs[0].AttestorErrors["ci"], "auth") {
				t.Errorf("reason %q does not say the registry refused access", fs[0].AttestorErrors["ci"])
			}
			if last := ks.asked[len(ks.asked)-1]; last != c.namespace+"/builder/regcred" {
				t.Errorf("keychain asked for %q", last)
			}
		})
	}
}

type anonymousKeychain struct{}

func (anonymousKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.Anonymous, nil
}

// TestCredentialsPrecedence: the pod's credentials come before the process
// keychain, which still serves registries the pod has no secret for.
func TestCredentialsPrecedence(t *testing.T) {
	cases := []struct {
		name    string
		process authn.Keychain
		pod     authn.Keychain
		want    attestation.Outcome
	}{
		{"pod before process", basicKeychain{"alice", "wrong"}, basicKeychain{"alice", "secret"}, attestation.Verified},
		{"process when the pod has none for the registry", basicKeychain{"alice", "secret"}, anonymousKeychain{}, attestation.Verified},
		{"neither", anonymousKeychain{}, anonymousKeychain{}, attestation.Unverifiable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := at.NewRegistry(t)
			key := at.ECKey(t, elliptic.P256())
			ref, digest := reg.Push(t, "private", "app")
			reg.Sign(t, "private", digest, key)
			requireAuth(reg)
			v := newVerifier(t, attestation.WithKeychain(c.process))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r := v.CheckWith(ctx, attestation.Credentials{Keychain: c.pod, ID: c.name}, workload.ParseImage(ref), []*policy.Attestor{at.KeyAttestor(t, "ci", key)}, nil)
			if got, why := outcome(r, "ci"); got != c.want {
				t.Errorf("outcome %v (%q), want %v", got, why, c.want)
			}
		})
	}
}

// TestCredentialsDoNotJoinAnonymousFetch: a pod with credentials whose
// image is being fetched for a pod without them does not wait for that
// fetch and inherit its auth failure.
func TestCredentialsDoNotJoinAnonymousFetch(t *testing.T) {
	reg := at.NewRegistry(t)
	key := at.ECKey(t, elliptic.P256())
	ci := at.KeyAttestor(t, "ci", key)
	_, digest := reg.Push(t, "private", "app")
	reg.Sign(t, "private", digest, key)
	reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "alice" && p == "secret" {
			return false
		}
		time.Sleep(300 * time.Millisecond) // the anonymous fetch is slow to fail
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		return true
	})
	v := newVerifier(t)
	img := workload.ParseImage(reg.Host + "/private@" + digest)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	anonymous := make(chan attestation.Result, 1)
	go func() { anonymous <- v.CheckWith(ctx, attestation.Credentials{}, img, []*policy.Attestor{ci}, nil) }()
	time.Sleep(50 * time.Millisecond) // the anonymous fetch is in flight
	r := v.CheckWith(ctx, attestation.Credentials{Keychain: basicKeychain{"alice", "secret"}, ID: "team/default/regcred"}, img, []*policy.Attestor{ci}, nil)
	if got, why := outcome(r, "ci"); got != attestation.Verified {
		t.Errorf("with credentials: %v (%q), want verified", got, why)
	}
	if got, why := outcome(<-anonymous, "ci"); got != attestation.Unverifiable || !strings.Contains(why, "auth") {
		t.Errorf("without credentials: %v (%q), want could not verify (auth)", got, why)
	}
}
