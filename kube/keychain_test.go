package kube_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imagegate/imagegate/kube"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// user returns who a keychain authenticates as for image ref ("" anonymous).
func user(t *testing.T, kc authn.Keychain, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	a, err := kc.Resolve(r.Context())
	if err != nil {
		t.Fatal(err)
	}
	if a == authn.Anonymous {
		return ""
	}
	cfg, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Username
}

func TestParseDockerConfigMatching(t *testing.T) {
	config := `{"auths":{
		"https://index.docker.io/v1/":{"auth":"` + b64("hub:pw") + `"},
		"registry.example.com:5000":{"username":"port","password":"pw"},
		"registry.example.com":{"username":"plain","password":"pw"},
		"registry.example.com/team":{"username":"team","password":"pw"},
		"*.corp.example":{"username":"glob","password":"pw"},
		"http://legacy.example/":{"auth":"` + b64("legacy:pw:with:colons") + `"}
	}}`
	cfg, err := kube.ParseDockerConfig(kube.SecretTypeDockerConfigJSON, []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ ref, want string }{
		{"nginx:1", "hub"},
		{"docker.io/library/nginx:1", "hub"},
		{"index.docker.io/me/app:1", "hub"},
		{"registry.example.com/app:1", "plain"},
		{"registry.example.com/team/app:1", "team"},
		{"registry.example.com/teams/app:1", "plain"},
		{"registry.example.com:5000/app:1", "port"},
		{"registry.example.com:5001/app:1", ""},
		{"a.corp.example/app:1", "glob"},
		{"a.b.corp.example/app:1", ""},
		{"legacy.example/app:1", "legacy"},
		{"quay.io/app:1", ""},
	}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			if got := user(t, cfg, c.ref); got != c.want {
				t.Errorf("user %q, want %q", got, c.want)
			}
		})
	}
}

func TestParseDockerConfigErrors(t *testing.T) {
	cases := []struct{ name, typ, data, want string }{
		{"not json", kube.SecretTypeDockerConfigJSON, `{`, "data[.dockerconfigjson]: expected a docker config.json"},
		{"bad auth", kube.SecretTypeDockerConfigJSON, `{"auths":{"r.io":{"auth":"!!"}}}`, `auths["r.io"].auth: expected base64 of user:password`},
		{"auth without colon", kube.SecretTypeDockercfg, `{"r.io":{"auth":"` + b64("nocolon") + `"}}`, `auths["r.io"].auth`},
		{"legacy not an object", kube.SecretTypeDockercfg, `[]`, "data[.dockercfg]: expected a legacy .dockercfg object"},
		{"opaque", "Opaque", `{}`, `type: "Opaque" holds no registry credentials`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := kube.ParseDockerConfig(c.typ, []byte(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func secret(ns, name, typ, registry, user string) *unstructured.Unstructured {
	key, data := ".dockerconfigjson", `{"auths":{"`+registry+`":{"username":"`+user+`","password":"pw"}}}`
	if typ == kube.SecretTypeDockercfg {
		key, data = ".dockercfg", `{"`+registry+`":{"username":"`+user+`","password":"pw"}}`
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"namespace": ns, "name": name}, "type": typ, "data": map[string]any{key: b64(data)}}}
}

func account(ns, name string, secrets ...string) *unstructured.Unstructured {
	var refs []any
	for _, s := range secrets {
		refs = append(refs, map[string]any{"name": s})
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ServiceAccount",
		"metadata": map[string]any{"namespace": ns, "name": name}, "imagePullSecrets": refs}}
}

// TestPullSecretsPrecedence uses client-go's in-process dynamic fake for
// speed; test/e2e/pullsecrets_test.go runs the same path against a real
// kube-apiserver and registry.
func TestPullSecretsPrecedence(t *testing.T) {
	client := fake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		{Version: "v1", Resource: "secrets"}:         "SecretList",
		{Version: "v1", Resource: "serviceaccounts"}: "ServiceAccountList",
	},
		secret("team", "pod-cred", kube.SecretTypeDockerConfigJSON, "reg.example", "pod-user"),
		secret("team", "legacy", kube.SecretTypeDockercfg, "old.example", "legacy-user"),
		secret("team", "sa-cred", kube.SecretTypeDockerConfigJSON, "reg.example", "sa-user"),
		secret("team", "sa-other", kube.SecretTypeDockerConfigJSON, "other.example", "sa-other-user"),
		secret("team", "default-cred", kube.SecretTypeDockerConfigJSON, "default.example", "default-user"),
		secret("elsewhere", "pod-cred", kube.SecretTypeDockerConfigJSON, "reg.example", "foreign-user"),
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "type": kube.SecretTypeDockerConfigJSON,
			"metadata": map[string]any{"namespace": "team", "name": "broken"}, "data": map[string]any{".dockerconfigjson": b64("{")}}},
		account("team", "builder", "sa-cred", "sa-other"),
		account("team", "default", "default-cred"),
	)
	ps := kube.NewPullSecrets(client, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ps.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for !ps.Synced() {
		if time.Now().After(deadline) {
			t.Fatal("informers did not sync")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cases := []struct {
		name, namespace, account string
		secrets                  []string
		ref, want                string
	}{
		{"pod secret before service account's", "team", "builder", []string{"pod-cred"}, "reg.example/app:1", "pod-user"},
		{"broken pod secret skipped", "team", "builder", []string{"broken", "pod-cred"}, "reg.example/app:1", "pod-user"},
		{"service account's when the pod has none", "team", "builder", nil, "reg.example/app:1", "sa-user"},
		{"service account's for another registry", "team", "builder", []string{"pod-cred"}, "other.example/app:1", "sa-other-user"},
		{"legacy dockercfg", "team", "builder", []string{"legacy"}, "old.example/app:1", "legacy-user"},
		{"default service account", "team", "", nil, "default.example/app:1", "default-user"},
		{"missing secret", "team", "nobody", []string{"gone"}, "reg.example/app:1", ""},
		{"other namespace's secret is not used", "elsewhere", "builder", nil, "reg.example/app:1", ""},
		{"no match: anonymous, so the process keychain is next", "team", "builder", []string{"pod-cred"}, "quay.io/app:1", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := user(t, ps.Keychain(c.namespace, c.account, c.secrets), c.ref); got != c.want {
				t.Errorf("user %q, want %q", got, c.want)
			}
		})
	}
}

// BenchmarkDockerConfigResolve is what a cache miss pays per registry for
// a pull secret: parsing it and matching the image's registry.
func BenchmarkDockerConfigResolve(b *testing.B) {
	data := []byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("hub:pw") + `"},"registry.example.com":{"username":"u","password":"p"},"*.corp.example":{"username":"g","password":"p"}}}`)
	repo, _ := name.NewRepository("registry.example.com/team/app")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		cfg, err := kube.ParseDockerConfig(kube.SecretTypeDockerConfigJSON, data)
		if err != nil {
			b.Fatal(err)
		}
		if a, _ := cfg.Resolve(repo); a == authn.Anonymous {
			b.Fatal("no match")
		}
	}
}

// TestPullSecretsWaitForFirstList: right after start, a lookup waits for
// the informers' first list (slowed down here) instead of finding nothing.
func TestPullSecretsWaitForFirstList(t *testing.T) {
	client := fake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		{Version: "v1", Resource: "secrets"}:         "SecretList",
		{Version: "v1", Resource: "serviceaccounts"}: "ServiceAccountList",
	}, secret("team", "pod-cred", kube.SecretTypeDockerConfigJSON, "reg.example", "pod-user"))
	client.PrependReactor("list", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		time.Sleep(300 * time.Millisecond)
		return false, nil, nil // then the fake's own tracker answers
	})
	ps := kube.NewPullSecrets(client, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ps.Run(ctx)
	for !ps.Started() {
		time.Sleep(time.Millisecond)
	}
	if ps.Synced() {
		t.Fatal("synced before the slowed list answered: the test proves nothing")
	}
	kc := ps.Keychain("team", "", []string{"pod-cred"})
	repo, _ := name.NewRepository("reg.example/app")
	lookup, stop := context.WithTimeout(ctx, 5*time.Second)
	defer stop()
	a, err := authn.Resolve(lookup, kc, repo)
	if err != nil {
		t.Fatal(err)
	}
	if a == authn.Anonymous {
		t.Fatal("anonymous: the lookup did not wait for the first list")
	}
}
