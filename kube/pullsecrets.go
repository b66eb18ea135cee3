package kube

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

var (
	secretsGVR         = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	serviceAccountsGVR = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
)

// DefaultServiceAccount is the service account of a pod that names none.
const DefaultServiceAccount = "default"

// PullSecrets finds a pod's registry credentials: its imagePullSecrets, then
// its service account's. It watches only Secrets of the two registry
// credential types (a field selector, so other Secrets are neither listed
// nor held in memory) and ServiceAccounts.
type PullSecrets struct {
	log       *slog.Logger
	factories []dynamicinformer.DynamicSharedInformerFactory
	secrets   []cache.Indexer // one per credential type
	accounts  cache.Indexer
	synced    []cache.InformerSynced
	// started closes when Run starts the informers; until then, and for
	// syncGrace after, a lookup waits (within its request's deadline) for
	// the informers' first list rather than deny a pod for want of its
	// secret right after imagegate started.
	started   chan struct{}
	startedAt time.Time
}

// syncGrace bounds how long after start lookups wait for the first list: an
// informer that never syncs (RBAC missing) must not slow every cache miss.
const syncGrace = 30 * time.Second

// NewPullSecrets builds the informers; Run starts them.
func NewPullSecrets(client dynamic.Interface, log *slog.Logger) *PullSecrets {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &PullSecrets{log: log, started: make(chan struct{})}
	for _, typ := range []string{SecretTypeDockerConfigJSON, SecretTypeDockercfg} {
		f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, 0, metav1.NamespaceAll, func(o *metav1.ListOptions) {
			o.FieldSelector = "type=" + typ
		})
		inf := f.ForResource(secretsGVR).Informer()
		_ = inf.SetTransform(slim("type", "data"))
		p.factories, p.secrets, p.synced = append(p.factories, f), append(p.secrets, inf.GetIndexer()), append(p.synced, inf.HasSynced)
	}
	f := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
	inf := f.ForResource(serviceAccountsGVR).Informer()
	_ = inf.SetTransform(slim("imagePullSecrets"))
	p.factories, p.accounts, p.synced = append(p.factories, f), inf.GetIndexer(), append(p.synced, inf.HasSynced)
	return p
}

// slim keeps of an object only its identity and the given top-level
// fields: the informers' caches then hold no managed fields, annotations or
// labels of what may be many Secrets and ServiceAccounts.
func slim(fields ...string) cache.TransformFunc {
	return func(obj any) (any, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj, nil // e.g. a DeletedFinalStateUnknown tombstone
		}
		out := &unstructured.Unstructured{Object: map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind()}}
		out.SetNamespace(u.GetNamespace())
		out.SetName(u.GetName())
		out.SetUID(u.GetUID())
		out.SetResourceVersion(u.GetResourceVersion())
		for _, f := range fields {
			if v, ok := u.Object[f]; ok {
				out.Object[f] = v
			}
		}
		return out, nil
	}
}

// Run starts the informers and blocks until ctx ends. Until they have
// synced, lookups find nothing and the process keychain alone is used.
func (p *PullSecrets) Run(ctx context.Context) {
	for _, f := range p.factories {
		f.Start(ctx.Done())
	}
	start := time.Now()
	p.startedAt = start
	close(p.started)
	if cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		p.log.Info("pull secrets and service accounts watched", "after", time.Since(start).String())
	}
	<-ctx.Done()
	for _, f := range p.factories {
		f.Shutdown()
	}
}

// Started reports whether Run has started the informers.
func (p *PullSecrets) Started() bool {
	select {
	case <-p.started:
		return true
	default:
		return false
	}
}

// Synced reports whether every informer has listed once.
func (p *PullSecrets) Synced() bool {
	for _, s := range p.synced {
		if !s() {
			return false
		}
	}
	return true
}

// Keychain returns the credentials of a pod in namespace: the named pull
// secrets in order, then those of serviceAccount (DefaultServiceAccount when
// empty). Nothing is looked up until the keychain is asked: a verification
// answered from the cache costs no lookup.
func (p *PullSecrets) Keychain(namespace, serviceAccount string, pullSecrets []string) authn.Keychain {
	if serviceAccount == "" {
		serviceAccount = DefaultServiceAccount
	}
	return &podKeychain{p: p, namespace: namespace, account: serviceAccount, secrets: pullSecrets}
}

type podKeychain struct {
	p         *PullSecrets
	namespace string
	account   string
	secrets   []string
}

var (
	_ authn.Keychain        = (*podKeychain)(nil)
	_ authn.ContextKeychain = (*podKeychain)(nil)
)

// ResolveContext is Resolve after waiting, right after start, for the
// informers' first list (at most until ctx ends).
func (k *podKeychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	k.p.waitSynced(ctx)
	return k.Resolve(r)
}

// waitSynced waits for the informers' first list while they are new.
func (p *PullSecrets) waitSynced(ctx context.Context) {
	if !p.Started() || p.Synced() || time.Since(p.startedAt) > syncGrace {
		return
	}
	ctx, cancel := context.WithDeadline(ctx, p.startedAt.Add(syncGrace))
	defer cancel()
	cache.WaitForCacheSync(ctx.Done(), p.synced...)
}

// Resolve tries the pod's secrets, then the service account's; a secret
// that is missing or malformed is skipped (and logged), as the kubelet
// skips it.
func (k *podKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	for _, names := range [][]string{k.secrets, k.p.accountSecrets(k.namespace, k.account)} {
		for _, name := range names {
			cfg, err := k.p.secret(k.namespace, name)
			if err != nil {
				k.p.log.Warn("pull secret not used", "namespace", k.namespace, "secret", name, "error", err.Error())
				continue
			}
			if cfg == nil {
				continue
			}
			a, err := cfg.Resolve(r)
			if err != nil {
				return nil, err
			}
			if a != authn.Anonymous {
				return a, nil
			}
		}
	}
	return authn.Anonymous, nil
}

// accountSecrets lists the imagePullSecrets of a service account.
func (p *PullSecrets) accountSecrets(namespace, account string) []string {
	obj, ok, err := p.accounts.GetByKey(namespace + "/" + account)
	if err != nil || !ok {
		return nil
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	refs, _, _ := unstructured.NestedSlice(u.Object, "imagePullSecrets")
	var out []string
	for _, r := range refs {
		if m, ok := r.(map[string]any); ok {
			if name, _ := m["name"].(string); name != "" {
				out = append(out, name)
			}
		}
	}
	return out
}

// secret returns a pull secret's parsed credentials; nil, nil when there is
// no such Secret of a credential type.
func (p *PullSecrets) secret(namespace, name string) (DockerConfig, error) {
	for _, idx := range p.secrets {
		obj, ok, err := idx.GetByKey(namespace + "/" + name)
		if err != nil || !ok {
			continue
		}
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		return secretConfig(u)
	}
	return nil, nil
}

// secretConfig parses a Secret object's registry credentials.
func secretConfig(u *unstructured.Unstructured) (DockerConfig, error) {
	typ, _, _ := unstructured.NestedString(u.Object, "type")
	key := keyDockerConfigJSON
	if typ == SecretTypeDockercfg {
		key = keyDockercfg
	}
	enc, _, _ := unstructured.NestedString(u.Object, "data", key)
	if enc == "" {
		return nil, fmt.Errorf("data[%s]: missing", key)
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("data[%s]: not base64: %w", key, err)
	}
	return ParseDockerConfig(typ, raw)
}
