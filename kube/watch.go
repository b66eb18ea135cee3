package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/imagegate/imagegate/policy"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// CRDMissingError reports that a CustomResourceDefinition is gone or being
// deleted. Deleting a CRD deletes its objects; the watcher does not take
// that for "no policies" and keeps the last good snapshot instead.
type CRDMissingError struct {
	CRD    string
	Reason string
}

func (e *CRDMissingError) Error() string {
	return fmt.Sprintf("CustomResourceDefinition %s %s; the last good policy snapshot stays in force", e.CRD, e.Reason)
}

type watchOptions struct {
	log         *slog.Logger
	debounce    time.Duration
	writeStatus bool
	fieldOwner  string
}

// WatchOption configures Watch.
type WatchOption func(*watchOptions)

// WithLogger sets where the watcher logs.
func WithLogger(l *slog.Logger) WatchOption { return func(o *watchOptions) { o.log = l } }

// WithDebounce sets how long the watcher waits after a change for more, so a
// kubectl apply of many objects builds one snapshot.
func WithDebounce(d time.Duration) WatchOption { return func(o *watchOptions) { o.debounce = d } }

// WithStatus turns writing status conditions on or off (on by default).
func WithStatus(on bool) WatchOption { return func(o *watchOptions) { o.writeStatus = on } }

// Watcher lists and watches the three policy resources with informers and
// turns them into snapshots.
type Watcher struct {
	client  dynamic.Interface
	opts    watchOptions
	factory dynamicinformer.DynamicSharedInformerFactory
	res     []Resource
	listers []cache.GenericLister
	synced  []cache.InformerSynced
	changed chan struct{}
}

// NewWatcher prepares the informers; Run starts them.
func NewWatcher(client dynamic.Interface, opts ...WatchOption) (*Watcher, error) {
	o := watchOptions{log: slog.New(slog.DiscardHandler), debounce: 100 * time.Millisecond, writeStatus: true, fieldOwner: "imagegate"}
	for _, opt := range opts {
		opt(&o)
	}
	w := &Watcher{client: client, opts: o, factory: dynamicinformer.NewDynamicSharedInformerFactory(client, 0),
		res: Resources(), changed: make(chan struct{}, 1)}
	notify := func() {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	for _, r := range w.res {
		inf := w.factory.ForResource(r.GVR())
		if _, err := inf.Informer().AddEventHandler(handler); err != nil {
			return nil, fmt.Errorf("kube: watch %s: %w", r.Plural, err)
		}
		w.listers = append(w.listers, inf.Lister())
		w.synced = append(w.synced, inf.Informer().HasSynced)
	}
	return w, nil
}

// HasAttestor reports whether an Attestor of that name exists, as far as the
// informer knows; before its first list it says yes, to warn about nothing.
func (w *Watcher) HasAttestor(name string) bool {
	if !w.synced[0]() {
		return true
	}
	_, err := w.listers[0].Get(name)
	return err == nil
}

// Run calls onLoad with a snapshot of the resources after the first complete
// list and after every change (or with the reason the set did not load),
// like policy.Watch does for a directory. It blocks until ctx ends. Until
// the informers have listed once, onLoad is not called, so imagegate stays
// not ready while the API server cannot be reached; later disconnects leave
// the last snapshot in force.
func (w *Watcher) Run(ctx context.Context, onLoad func(*policy.Snapshot, error)) error {
	w.factory.Start(ctx.Done())
	defer w.factory.Shutdown()
	w.opts.log.Info("waiting for the policy custom resources to be listed")
	if !cache.WaitForCacheSync(ctx.Done(), w.synced...) {
		return fmt.Errorf("kube: policy resources not listed before shutdown")
	}
	st := &state{Watcher: w, onLoad: onLoad, decoded: map[types.UID]decodedItem{}, statusQ: make(chan statusJob, 1)}
	// Status writes run beside the rebuilds, so a large set's first writes
	// never delay the next change from taking effect.
	go st.statusLoop(ctx)
	st.rebuild(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.changed:
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(w.opts.debounce):
			}
			st.rebuild(ctx)
		}
	}
}

// GVR is the resource's group, version and resource.
func (r Resource) GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: Group, Version: Version, Resource: r.Plural}
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// state is what one Run remembers between rebuilds.
type state struct {
	*Watcher
	onLoad     func(*policy.Snapshot, error)
	lastDigest string
	lastErr    string
	// decoded remembers each object's decode by uid and resourceVersion, so
	// a change re-decodes only the objects that changed.
	decoded map[types.UID]decodedItem
	statusQ chan statusJob // the latest outcome whose status is not written yet
}

type statusJob struct {
	items  []*item
	setErr error
}

// queueStatus replaces any outcome not yet written with this one.
func (w *state) queueStatus(items []*item, setErr error) {
	select {
	case <-w.statusQ:
	default:
	}
	w.statusQ <- statusJob{items, setErr}
}

func (w *state) statusLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-w.statusQ:
			w.writeStatus(ctx, j.items, j.setErr)
		}
	}
}

type decodedItem struct {
	resourceVersion string
	obj             policy.Object
	errs            []string
}

func (w *state) decode(r Resource, u *unstructured.Unstructured) *item {
	if u.GetUID() == "" {
		return decodeItem(r, u)
	}
	if d, ok := w.decoded[u.GetUID()]; ok && d.resourceVersion == u.GetResourceVersion() {
		it := &item{res: r, u: u, obj: d.obj, errs: append([]string(nil), d.errs...)}
		if len(it.errs) > 0 {
			it.kind = "InvalidField"
		}
		return it
	}
	it := decodeItem(r, u)
	w.decoded[u.GetUID()] = decodedItem{resourceVersion: u.GetResourceVersion(), obj: it.obj, errs: append([]string(nil), it.errs...)}
	return it
}

// item is one custom resource and what became of it.
type item struct {
	res  Resource
	u    *unstructured.Unstructured
	obj  policy.Object // nil when it did not decode
	errs []string
	kind string // condition reason when errs is not empty
}

func (w *state) rebuild(ctx context.Context) {
	if err := w.crdsPresent(ctx); err != nil {
		w.report(nil, err)
		return
	}
	var items []*item
	seen := map[types.UID]bool{}
	for i, l := range w.listers {
		objs, err := l.List(labels.Everything())
		if err != nil {
			w.report(nil, fmt.Errorf("kube: list %s: %w", w.res[i].Plural, err))
			return
		}
		for _, ro := range objs {
			u, ok := ro.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			items = append(items, w.decode(w.res[i], u))
			seen[u.GetUID()] = true
		}
	}
	for uid := range w.decoded {
		if !seen[uid] {
			delete(w.decoded, uid)
		}
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].res.Kind != items[j].res.Kind {
			return items[i].res.Kind < items[j].res.Kind
		}
		return items[i].u.GetName() < items[j].u.GetName()
	})
	snap, err := buildSnapshot(items)
	w.report(snap, err)
	if w.opts.writeStatus {
		w.queueStatus(items, err)
	}
}

// report calls onLoad unless nothing changed since the last call, so status
// writes (which come back as update events) do not recompile the engine.
func (w *state) report(snap *policy.Snapshot, err error) {
	if err != nil {
		if err.Error() == w.lastErr {
			return
		}
		w.lastErr = err.Error()
		w.onLoad(nil, err)
		return
	}
	w.lastErr = ""
	if snap.Digest() == w.lastDigest {
		return
	}
	w.lastDigest = snap.Digest()
	w.onLoad(snap, nil)
}

func (w *state) crdsPresent(ctx context.Context) error {
	for _, r := range w.res {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		crd, err := w.client.Resource(crdGVR).Get(c, r.CRDName(), metav1.GetOptions{})
		cancel()
		switch {
		case apierrors.IsNotFound(err):
			return &CRDMissingError{CRD: r.CRDName(), Reason: "does not exist"}
		case err != nil:
			// Forbidden or unreachable: the informers' view is all there is.
			w.opts.log.Debug("cannot check CustomResourceDefinition", "crd", r.CRDName(), "error", err.Error())
		case crd.GetDeletionTimestamp() != nil:
			return &CRDMissingError{CRD: r.CRDName(), Reason: "is being deleted"}
		}
	}
	return nil
}

// decodeItem runs the strict policy decoder over the object as the API
// server stores it, so a resource is held to exactly the rules of a file.
func decodeItem(r Resource, u *unstructured.Unstructured) *item {
	data, err := json.Marshal(decodable(u))
	if err != nil {
		return &item{res: r, u: u, kind: "InvalidField", errs: errorLines(err)}
	}
	return decodeData(r, u, data)
}

// decodeData is decodeItem after marshalling, apart so that documents the
// API server cannot produce (none, or several) can be fed to it in tests.
func decodeData(r Resource, u *unstructured.Unstructured, data []byte) *item {
	obj, err := decodeOne(data)
	if err != nil {
		return &item{res: r, u: u, kind: "InvalidField", errs: errorLines(err)}
	}
	return &item{res: r, u: u, obj: obj}
}

// decodeOne decodes and validates data holding exactly one policy object;
// the watcher, the store and /validate-policy all hold an object to it.
func decodeOne(data []byte) (policy.Object, error) {
	objs, err := policy.Parse("", data)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		// Zero documents would otherwise leave an item with neither an
		// object nor an error, silently dropped from the snapshot.
		return nil, fmt.Errorf("expected exactly one object, found %d", len(objs))
	}
	if err := policy.Validate(objs[0]); err != nil {
		return nil, err
	}
	return objs[0], nil
}

// decodable is the object without what the API server adds and the decoder
// would only skip: status and managedFields (often most of the bytes).
func decodable(u *unstructured.Unstructured) map[string]any {
	out := make(map[string]any, len(u.Object))
	for k, v := range u.Object {
		if k != "status" {
			out[k] = v
		}
	}
	if md, ok := u.Object["metadata"].(map[string]any); ok {
		m := make(map[string]any, len(md))
		for k, v := range md {
			if k != "managedFields" {
				m[k] = v
			}
		}
		out["metadata"] = m
	}
	return out
}

// buildSnapshot builds one snapshot of every object, as a policy directory
// loads: any error refuses the whole set. The errors are attached to the
// objects they concern.
func buildSnapshot(items []*item) (*policy.Snapshot, error) {
	var objs []policy.Object
	invalid := 0
	for _, it := range items {
		if it.obj == nil {
			invalid++
			continue
		}
		objs = append(objs, it.obj)
	}
	if invalid > 0 {
		return nil, setError(items)
	}
	snap, err := policy.NewSnapshot(objs...)
	if err == nil {
		return snap, nil
	}
	var fes policy.Errors
	if !errors.As(err, &fes) {
		return nil, err
	}
	byKey := map[string]*item{}
	for _, it := range items {
		byKey[it.res.Kind+"/"+it.u.GetName()] = it
	}
	for _, fe := range fes {
		it := byKey[fe.Kind+"/"+fe.Name]
		if it == nil {
			continue
		}
		it.errs = append(it.errs, fe.Error())
		if it.kind == "" {
			it.kind = reasonFor(fe)
		}
	}
	return nil, setError(items)
}

func reasonFor(fe *policy.FieldError) string {
	switch fe.Path {
	case "spec.strategyId":
		return "DuplicateStrategyId"
	}
	if strings.HasPrefix(fe.Path, "spec.policy.requiredAttestors[") {
		return "UnknownAttestor"
	}
	return "InvalidField"
}

// SetError is why a set of policy resources did not load.
type SetError struct{ Problems []string }

func (e *SetError) Error() string {
	return fmt.Sprintf("policy resources not loaded (%d problems; the last good snapshot stays in force): %s", len(e.Problems), joinLines(e.Problems))
}

func setError(items []*item) error {
	var ps []string
	for _, it := range items {
		ps = append(ps, it.errs...)
	}
	return &SetError{Problems: ps}
}
