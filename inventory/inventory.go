package inventory

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Key names a workload: its namespace, kind and name.
type Key struct {
	Namespace, Kind, Name string
}

func (k Key) String() string { return k.Namespace + "/" + k.Kind + "/" + k.Name }

// Workload is a workload's pods, as trimmed by the inventory: read-only.
type Workload struct {
	Key  Key
	Pods []*corev1.Pod
}

// Index names.
const (
	byOwner  = "owner"  // a pod's or controller's direct controller (or the pod itself)
	byImage  = "image"  // image references as written
	byDigest = "digest" // digests written in references or pulled by the kubelet
)

// Option configures an Inventory.
type Option func(*options)

type options struct {
	onChange func(Key)
	exclude  []string
	resync   time.Duration
}

// WithOnChange calls fn with the key of every workload whose pods (or
// ownership) changed. fn runs on an informer goroutine and must not block.
func WithOnChange(fn func(Key)) Option { return func(o *options) { o.onChange = fn } }

// WithExcludedNamespaces leaves namespaces out of the inventory (a field
// selector: their pods are not even sent).
func WithExcludedNamespaces(ns ...string) Option {
	return func(o *options) { o.exclude = append(o.exclude, ns...) }
}

// Inventory watches pods, ReplicaSets and Jobs.
type Inventory struct {
	opts    options
	factory informers.SharedInformerFactory
	pods    cache.SharedIndexInformer
	rs      cache.SharedIndexInformer
	jobs    cache.SharedIndexInformer
}

// New prepares the informers; Start starts them.
func New(client kubernetes.Interface, opts ...Option) (*Inventory, error) {
	o := options{onChange: func(Key) {}}
	for _, fn := range opts {
		fn(&o)
	}
	var tweak []informers.SharedInformerOption
	if len(o.exclude) > 0 {
		sel := make([]fields.Selector, 0, len(o.exclude))
		for _, ns := range slices.Compact(slices.Sorted(slices.Values(o.exclude))) {
			sel = append(sel, fields.OneTermNotEqualSelector("metadata.namespace", ns))
		}
		s := fields.AndSelectors(sel...).String()
		tweak = append(tweak, informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.FieldSelector = s }))
	}
	f := informers.NewSharedInformerFactoryWithOptions(client, o.resync, tweak...)
	inv := &Inventory{opts: o, factory: f, pods: f.Core().V1().Pods().Informer(),
		rs: f.Apps().V1().ReplicaSets().Informer(), jobs: f.Batch().V1().Jobs().Informer()}
	errs := []error{
		inv.pods.SetTransform(trimPod), inv.rs.SetTransform(trimController), inv.jobs.SetTransform(trimController),
		inv.pods.AddIndexers(cache.Indexers{byOwner: ownerIndex, byImage: imageIndex, byDigest: digestIndex}),
		inv.rs.AddIndexers(cache.Indexers{byOwner: ownerIndex}), inv.jobs.AddIndexers(cache.Indexers{byOwner: ownerIndex}),
	}
	_, err := inv.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { inv.podChanged(nil, obj) },
		UpdateFunc: inv.podChanged,
		DeleteFunc: func(obj any) { inv.podChanged(nil, obj) },
	})
	errs = append(errs, err)
	for _, ctl := range []cache.SharedIndexInformer{inv.rs, inv.jobs} {
		_, err := ctl.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { inv.controllerChanged(nil, obj) },
			UpdateFunc: inv.controllerChanged,
			DeleteFunc: func(obj any) { inv.controllerChanged(nil, obj) },
		})
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return inv, nil
}

// Start starts the informers; they stop with ctx.
func (inv *Inventory) Start(ctx context.Context) { inv.factory.Start(ctx.Done()) }

// WaitSynced waits until the informers hold the cluster's objects.
func (inv *Inventory) WaitSynced(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), inv.pods.HasSynced, inv.rs.HasSynced, inv.jobs.HasSynced)
}

// Shutdown stops the informers and waits for them.
func (inv *Inventory) Shutdown() { inv.factory.Shutdown() }

func (inv *Inventory) podChanged(old, cur any) {
	p := podOf(cur)
	if p == nil {
		return
	}
	if op := podOf(old); op != nil && sameButVersion(op, p) {
		return
	}
	inv.opts.onChange(inv.Top(p))
}

func (inv *Inventory) controllerChanged(old, cur any) {
	m := metaOf(cur)
	if m == nil {
		return
	}
	if om := metaOf(old); om != nil && reflect.DeepEqual(om.OwnerReferences, m.OwnerReferences) {
		return
	}
	kind := "ReplicaSet"
	if _, ok := cur.(*batchv1.Job); ok {
		kind = "Job"
	}
	// Its pods belonged to it or to its controller; whichever they belong
	// to now, both are looked at again.
	inv.opts.onChange(Key{m.Namespace, kind, m.Name})
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		inv.opts.onChange(Key{m.Namespace, ref.Kind, ref.Name})
	}
}

func podOf(obj any) *corev1.Pod {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, _ := obj.(*corev1.Pod)
	return p
}

func metaOf(obj any) *metav1.ObjectMeta {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	switch c := obj.(type) {
	case *appsv1.ReplicaSet:
		return &c.ObjectMeta
	case *batchv1.Job:
		return &c.ObjectMeta
	}
	return nil
}

func sameButVersion(a, b *corev1.Pod) bool {
	x, y := *a, *b
	// The annotating action's own writes change nothing decided.
	x.ResourceVersion, y.ResourceVersion = "", ""
	x.Annotations, y.Annotations = nil, nil
	return reflect.DeepEqual(&x, &y)
}

// Top is the workload a pod belongs to.
func (inv *Inventory) Top(p *corev1.Pod) Key {
	ref := metav1.GetControllerOfNoCopy(p)
	if ref == nil {
		return Key{p.Namespace, "Pod", p.Name}
	}
	var store cache.Store
	switch ref.Kind {
	case "ReplicaSet":
		store = inv.rs.GetStore()
	case "Job":
		store = inv.jobs.GetStore()
	default:
		return Key{p.Namespace, ref.Kind, ref.Name}
	}
	if obj, ok, _ := store.GetByKey(p.Namespace + "/" + ref.Name); ok {
		if m := metaOf(obj); m != nil {
			if up := metav1.GetControllerOfNoCopy(m); up != nil {
				return Key{p.Namespace, up.Kind, up.Name}
			}
		}
	}
	return Key{p.Namespace, ref.Kind, ref.Name}
}

// Workload returns the pods of the workload k; false when it has none.
func (inv *Inventory) Workload(k Key) (Workload, bool) {
	w := Workload{Key: k}
	add := func(owner string) {
		objs, _ := inv.pods.GetIndexer().ByIndex(byOwner, owner)
		for _, obj := range objs {
			if p := podOf(obj); p != nil && inv.Top(p) == k {
				w.Pods = append(w.Pods, p)
			}
		}
	}
	switch k.Kind {
	case "Pod":
		if obj, ok, _ := inv.pods.GetStore().GetByKey(k.Namespace + "/" + k.Name); ok {
			if p := podOf(obj); p != nil && inv.Top(p) == k {
				w.Pods = append(w.Pods, p)
			}
		}
	case "Deployment", "CronJob":
		ctl := inv.rs
		if k.Kind == "CronJob" {
			ctl = inv.jobs
		}
		objs, _ := ctl.GetIndexer().ByIndex(byOwner, k.String())
		for _, obj := range objs {
			if m := metaOf(obj); m != nil {
				kind := "ReplicaSet"
				if k.Kind == "CronJob" {
					kind = "Job"
				}
				add(Key{m.Namespace, kind, m.Name}.String())
			}
		}
	default:
		add(k.String())
	}
	slices.SortFunc(w.Pods, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return w, len(w.Pods) > 0
}

// Keys lists every workload with a pod.
func (inv *Inventory) Keys() []Key {
	seen := map[Key]bool{}
	var out []Key
	for _, obj := range inv.pods.GetStore().List() {
		if p := podOf(obj); p != nil {
			if k := inv.Top(p); !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// ByImage lists the workloads with a container of image reference ref (as
// written).
func (inv *Inventory) ByImage(ref string) []Key { return inv.keysBy(byImage, ref) }

// ByDigest lists the workloads with an image of digest d, written in the
// reference or pulled by the kubelet.
func (inv *Inventory) ByDigest(d string) []Key { return inv.keysBy(byDigest, d) }

func (inv *Inventory) keysBy(index, value string) []Key {
	objs, _ := inv.pods.GetIndexer().ByIndex(index, value)
	seen := map[Key]bool{}
	var out []Key
	for _, obj := range objs {
		if p := podOf(obj); p != nil {
			if k := inv.Top(p); !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// Len is the number of pods held.
func (inv *Inventory) Len() int { return len(inv.pods.GetStore().ListKeys()) }

func ownerIndex(obj any) ([]string, error) {
	var m *metav1.ObjectMeta
	kind := "Pod"
	if p := podOf(obj); p != nil {
		m = &p.ObjectMeta
	} else if m = metaOf(obj); m == nil {
		return nil, nil
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		return []string{Key{m.Namespace, ref.Kind, ref.Name}.String()}, nil
	}
	if kind == "Pod" && podOf(obj) != nil {
		return []string{Key{m.Namespace, kind, m.Name}.String()}, nil
	}
	return nil, nil
}

func imageIndex(obj any) ([]string, error) {
	p := podOf(obj)
	if p == nil {
		return nil, nil
	}
	var out []string
	for _, c := range Containers(p) {
		if !slices.Contains(out, c.Image) {
			out = append(out, c.Image)
		}
	}
	return out, nil
}

func digestIndex(obj any) ([]string, error) {
	p := podOf(obj)
	if p == nil {
		return nil, nil
	}
	var out []string
	for _, c := range Containers(p) {
		if d := digestOf(c.Image); d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	for _, s := range p.Status.ContainerStatuses {
		if !slices.Contains(out, s.ImageID) {
			out = append(out, s.ImageID)
		}
	}
	return out, nil
}

// Containers are every container of a trimmed pod: containers, init and
// ephemeral ones.
func Containers(p *corev1.Pod) []corev1.Container {
	out := make([]corev1.Container, 0, len(p.Spec.Containers)+len(p.Spec.InitContainers)+len(p.Spec.EphemeralContainers))
	out = append(out, p.Spec.Containers...)
	out = append(out, p.Spec.InitContainers...)
	for _, e := range p.Spec.EphemeralContainers {
		out = append(out, corev1.Container{Name: e.Name, Image: e.Image})
	}
	return out
}
