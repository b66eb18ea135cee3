package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/api"
	"github.com/imagegate/imagegate/policy"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// Store is the management API's api.Store over the imagegate.dev custom
// resources: what the API writes is what the Watcher turns into the
// webhook's snapshot. It lives here rather than in api because api is the
// consumer that defines Store and should not depend on client-go, while
// this package already owns the resources and their strict decode path;
// kube importing api's small Change/Ref/error types is the sensible
// direction.
//
// Reads list through the client rather than the Watcher's informer caches:
// a client reading right after its own write must see it, and a cache
// lags. Decodes are remembered by uid and resourceVersion, so a read of an
// unchanged set costs the three lists and no parsing.
type Store struct {
	client dynamic.Interface
	opts   storeOptions
	res    []Resource

	mu      sync.Mutex
	decoded map[types.UID]storedObject
	// seen is each object's version as the last Snapshot reported it: the
	// management API reads, then changes what it read, and a kubectl edit
	// in between must not be overwritten silently. The version is uid,
	// generation, labels and annotations, not the resourceVersion: the
	// watcher's status writes change that at any time.
	seen      map[api.Ref]string
	read      bool // a Snapshot was taken, so seen is meaningful
	cached    *policy.Snapshot
	cachedSig string
}

var _ api.Store = (*Store)(nil)

type storeOptions struct {
	check        func(*policy.Snapshot) error
	timeout      time.Duration
	fieldManager string
}

// StoreOption configures NewStore.
type StoreOption func(*storeOptions)

// WithCheck runs fn on the validated resulting set before anything is
// written, as api.DirStore's Check (serve compiles the Rego engine with it).
func WithCheck(fn func(*policy.Snapshot) error) StoreOption {
	return func(o *storeOptions) { o.check = fn }
}

// WithRequestTimeout bounds each call to the API server.
func WithRequestTimeout(d time.Duration) StoreOption {
	return func(o *storeOptions) { o.timeout = d }
}

// NewStore returns a Store writing through client.
func NewStore(client dynamic.Interface, opts ...StoreOption) *Store {
	o := storeOptions{timeout: 10 * time.Second, fieldManager: "imagegate-api"}
	for _, opt := range opts {
		opt(&o)
	}
	return &Store{client: client, opts: o, res: Resources(), decoded: map[types.UID]storedObject{}, seen: map[api.Ref]string{}}
}

// storedObject is one custom resource and its decode.
type storedObject struct {
	res Resource
	u   *unstructured.Unstructured
	obj policy.Object // nil when errs is set
	rv  string
	err policy.Errors
}

func (o *storedObject) ref() api.Ref { return api.Ref{Kind: o.res.Kind, Name: o.u.GetName()} }

// list reads and decodes every policy resource, sorted by kind and name.
func (s *Store) list(ctx context.Context) ([]*storedObject, error) {
	var out []*storedObject
	live := map[types.UID]bool{}
	for _, r := range s.res {
		c, cancel := context.WithTimeout(ctx, s.opts.timeout)
		l, err := s.client.Resource(r.GVR()).List(c, metav1.ListOptions{})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("kube: list %s: %w", r.Plural, err)
		}
		for i := range l.Items {
			u := &l.Items[i]
			live[u.GetUID()] = true
			if d, ok := s.decoded[u.GetUID()]; ok && u.GetUID() != "" && d.rv == u.GetResourceVersion() {
				out = append(out, &storedObject{res: r, u: u, obj: d.obj, rv: d.rv, err: d.err})
				continue
			}
			so := &storedObject{res: r, u: u, rv: u.GetResourceVersion()}
			so.obj, so.err = decodeStored(r, u)
			if u.GetUID() != "" {
				s.decoded[u.GetUID()] = *so
			}
			out = append(out, so)
		}
	}
	for uid := range s.decoded {
		if !live[uid] {
			delete(s.decoded, uid)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].res.Kind != out[j].res.Kind {
			return out[i].res.Kind < out[j].res.Kind
		}
		return out[i].u.GetName() < out[j].u.GetName()
	})
	return out, nil
}

// decodeStored is decodeItem keeping the field errors typed, so a refused
// change can name the objects and fields it concerns.
func decodeStored(r Resource, u *unstructured.Unstructured) (policy.Object, policy.Errors) {
	data, err := json.Marshal(decodable(u))
	if err != nil {
		return nil, policy.Errors{{Kind: r.Kind, Name: u.GetName(), Msg: err.Error()}}
	}
	obj, err := decodeOne(data)
	if err == nil {
		return obj, nil
	}
	var fes policy.Errors
	if !errors.As(err, &fes) {
		fes = policy.Errors{{Msg: err.Error()}}
	}
	for _, fe := range fes {
		fe.Kind, fe.Name = r.Kind, u.GetName()
	}
	return nil, fes
}

// Snapshot builds the snapshot the Watcher would build from the resources
// as they are now; a set that does not load is an error, as for a directory.
func (s *Store) Snapshot() (*policy.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.list(context.Background())
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	seen := make(map[api.Ref]string, len(all))
	var objs []policy.Object
	var errs policy.Errors
	for _, o := range all {
		fmt.Fprintf(&b, "%s\x00%s\n", o.u.GetUID(), o.rv)
		seen[o.ref()] = contentVersion(o.u)
		errs = append(errs, o.err...)
		if o.obj != nil {
			objs = append(objs, o.obj)
		}
	}
	s.seen, s.read = seen, true
	if len(errs) > 0 {
		return nil, fmt.Errorf("policy resources do not load: %w", errs)
	}
	if s.cached != nil && b.String() == s.cachedSig {
		return s.cached, nil
	}
	snap, err := policy.NewSnapshot(objs...)
	if err != nil {
		return nil, fmt.Errorf("policy resources do not load: %w", err)
	}
	s.cached, s.cachedSig = snap, b.String()
	return snap, nil
}

// Apply validates the resources with the change applied, as a whole, and
// then creates, updates or deletes one resource. Updates and deletes carry
// the resourceVersion they were validated against, so a concurrent change
// makes the write fail with api.ConflictError instead of landing on a set
// nobody validated. A refused change writes nothing.
func (s *Store) Apply(c api.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 1; ; attempt++ {
		err := s.apply(c)
		// The API server refuses a stale resourceVersion also when only
		// status changed (the watcher writes it); apply again, which
		// re-reads and still refuses a real concurrent change.
		if attempt < 3 && apierrors.IsConflict(err) {
			continue
		}
		return err
	}
}

func (s *Store) apply(c api.Change) error {
	ctx := context.Background()
	var target api.Ref
	switch {
	case c.Put != nil:
		target = api.Ref{Kind: policy.KindOf(c.Put), Name: policy.NameOf(c.Put)}
	case c.Delete != nil:
		target = *c.Delete
	default:
		return errors.New("kube: empty change")
	}
	res, ok := s.resource(target.Kind)
	if !ok {
		return fmt.Errorf("kube: unknown kind %q", target.Kind)
	}
	all, err := s.list(ctx)
	if err != nil {
		return err
	}
	var existing *storedObject
	var next []policy.Object
	var broken policy.Errors
	for _, o := range all {
		switch {
		case o.ref() == target:
			// The change replaces or removes it, so a broken object can be
			// repaired or deleted through the API.
			existing = o
		case o.err != nil:
			broken = append(broken, o.err...)
		default:
			next = append(next, o.obj)
		}
	}
	if c.Put != nil {
		next = append(next, c.Put)
	}
	if len(broken) > 0 {
		return &api.InvalidError{Target: target, Errs: broken}
	}
	snap, err := policy.NewSnapshot(next...)
	if err != nil {
		var fes policy.Errors
		if errors.As(err, &fes) {
			return &api.InvalidError{Target: target, Errs: fes}
		}
		return err
	}
	if s.opts.check != nil {
		if err := s.opts.check(snap); err != nil {
			return fmt.Errorf("the resulting policy set does not compile: %w", err)
		}
	}
	rv, wasSeen := s.seen[target]
	if c.Put != nil && existing != nil && s.read && !wasSeen {
		return &api.ConflictError{Target: target, Err: errors.New("it was created by someone else after the objects were read")}
	}
	if wasSeen {
		switch {
		case existing == nil && c.Put != nil:
			return &api.ConflictError{Target: target, Err: errors.New("it was deleted after it was read")}
		case existing != nil && rv != contentVersion(existing.u):
			return &api.ConflictError{Target: target, Err: fmt.Errorf("read as %s, the cluster has %s", rv, contentVersion(existing.u))}
		}
	}
	s.cached = nil
	c2, cancel := context.WithTimeout(ctx, s.opts.timeout)
	defer cancel()
	client := s.client.Resource(res.GVR())
	if c.Put == nil {
		if existing == nil {
			return nil
		}
		uid, rv := existing.u.GetUID(), existing.rv
		err := client.Delete(c2, target.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		if err == nil || apierrors.IsNotFound(err) {
			delete(s.seen, target)
			return nil
		}
		return writeErr(target, err)
	}
	u, err := toUnstructured(c.Put)
	if err != nil {
		return err
	}
	var out *unstructured.Unstructured
	if existing == nil {
		out, err = client.Create(c2, u, metav1.CreateOptions{FieldManager: s.opts.fieldManager})
	} else {
		// Keep what the API server and others own in metadata (uid,
		// finalizers, owner references); the API governs labels,
		// annotations and spec.
		upd := existing.u.DeepCopy()
		delete(upd.Object, "status")
		upd.Object["spec"] = u.Object["spec"]
		upd.SetLabels(u.GetLabels())
		upd.SetAnnotations(u.GetAnnotations())
		upd.SetManagedFields(nil)
		out, err = client.Update(c2, upd, metav1.UpdateOptions{FieldManager: s.opts.fieldManager})
	}
	if err != nil {
		return writeErr(target, err)
	}
	s.seen[target] = contentVersion(out)
	return nil
}

// contentVersion changes when what the API governs changes (spec bumps
// the generation) or the object is replaced, not when status is written.
func contentVersion(u *unstructured.Unstructured) string {
	meta, _ := json.Marshal([]any{u.GetLabels(), u.GetAnnotations()})
	return fmt.Sprintf("%s/%d/%s", u.GetUID(), u.GetGeneration(), meta)
}

func (s *Store) resource(kind string) (Resource, bool) {
	for _, r := range s.res {
		if r.Kind == kind {
			return r, true
		}
	}
	return Resource{}, false
}

// toUnstructured is the custom resource of a policy object: the policy
// types' JSON is the CRD schema (crd.go generates it from them), with
// metadata.name the object's name and no status.
func toUnstructured(o policy.Object) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("kube: encode %s %s: %w", policy.KindOf(o), policy.NameOf(o), err)
	}
	u := &unstructured.Unstructured{}
	// UnmarshalJSON keeps integers int64, as the API server's own decode.
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("kube: encode %s %s: %w", policy.KindOf(o), policy.NameOf(o), err)
	}
	u.SetAPIVersion(Group + "/" + Version)
	u.SetKind(policy.KindOf(o))
	delete(u.Object, "status")
	return u, nil
}

// writeErr maps the API server's refusals: a lost race to
// api.ConflictError, a field the API server refuses (e.g. a name that is
// not a DNS subdomain) to api.InvalidError naming it.
func writeErr(target api.Ref, err error) error {
	switch {
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err), apierrors.IsNotFound(err):
		return &api.ConflictError{Target: target, Err: err}
	case apierrors.IsInvalid(err):
		var se *apierrors.StatusError
		if errors.As(err, &se) && se.ErrStatus.Details != nil && len(se.ErrStatus.Details.Causes) > 0 {
			var fes policy.Errors
			for _, c := range se.ErrStatus.Details.Causes {
				fes = append(fes, &policy.FieldError{Kind: target.Kind, Name: target.Name, Path: c.Field, Msg: c.Message})
			}
			return &api.InvalidError{Target: target, Errs: fes}
		}
	}
	return fmt.Errorf("kube: write %s %s: %w", target.Kind, target.Name, err)
}
