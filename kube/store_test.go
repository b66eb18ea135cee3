package kube

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/api"
	"github.com/imagegate/imagegate/policy"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fieldpath "k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

func storeClient(t testing.TB, docs ...string) *fake.FakeDynamicClient {
	t.Helper()
	lists := map[schema.GroupVersionResource]string{}
	for _, r := range Resources() {
		lists[r.GVR()] = r.Kind + "List"
	}
	var objs []runtime.Object
	for _, d := range docs {
		objs = append(objs, fromYAML(t, d))
	}
	return fake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists, objs...)
}

func strategy(name string, id int64, action int) *policy.OpaStrategy {
	return &policy.OpaStrategy{TypeMeta: policy.TypeMeta{APIVersion: policy.APIVersion, Kind: policy.KindOpaStrategy},
		Metadata: policy.ObjectMeta{Name: name, Labels: map[string]string{"team": "sec"}},
		Spec:     policy.OpaStrategySpec{StrategyID: id, StrategyName: name, ClusterID: "c1", UnScanedImage: true, RuleAction: action, ImageName: []string{"app-*"}}}
}

func strategyGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: Group, Version: Version, Resource: "opastrategies"}
}

// writes are the create, update and delete calls the store made.
func writes(c *fake.FakeDynamicClient) []string {
	var out []string
	for _, a := range c.Actions() {
		switch a.GetVerb() {
		case "create", "update", "delete", "patch":
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	return out
}

const seedStrategy = `apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: seed, uid: u1, resourceVersion: "7"}
spec: {strategyId: 5, ruleAction: 2, imageName: ["x-*"]}
`

const brokenStrategy = `apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: broken, uid: u2, resourceVersion: "8"}
spec: {strategyId: 6, ruleAction: 2, imageName: ["["]}
`

func TestStoreRoundTrip(t *testing.T) {
	client := storeClient(t, seedStrategy)
	s := NewStore(client)
	ctx := context.Background()
	if err := s.Apply(api.Change{Put: strategy("api-block", 9, 2)}); err != nil {
		t.Fatalf("create: %v", err)
	}
	u, err := client.Resource(strategyGVR()).Get(ctx, "api-block", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the CR was not created: %v", err)
	}
	if u.GetAPIVersion() != "imagegate.dev/v1alpha1" || u.GetKind() != "OpaStrategy" || u.GetLabels()["team"] != "sec" {
		t.Errorf("created %s %s labels %v", u.GetAPIVersion(), u.GetKind(), u.GetLabels())
	}
	if id, _, _ := unstructured.NestedInt64(u.Object, "spec", "strategyId"); id != 9 {
		t.Errorf("spec.strategyId = %d (%T), want int64 9", id, u.Object["spec"].(map[string]any)["strategyId"])
	}
	if _, ok := u.Object["status"]; ok {
		t.Errorf("the store wrote a status: %v", u.Object["status"])
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(snap.Strategies()); got != 2 {
		t.Fatalf("snapshot has %d strategies, want 2", got)
	}

	// An update keeps metadata the API does not govern and replaces spec.
	u.SetFinalizers([]string{"keep.example/x"})
	u.SetResourceVersion("20")
	if _, err := client.Resource(strategyGVR()).Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(api.Change{Put: strategy("api-block", 9, 1)}); err != nil {
		t.Fatalf("update: %v", err)
	}
	u, _ = client.Resource(strategyGVR()).Get(ctx, "api-block", metav1.GetOptions{})
	if a, _, _ := unstructured.NestedInt64(u.Object, "spec", "ruleAction"); a != 1 || len(u.GetFinalizers()) != 1 {
		t.Errorf("after update: ruleAction %d finalizers %v", a, u.GetFinalizers())
	}
	var sentRV string
	for _, a := range client.Actions() {
		if ua, ok := a.(k8stesting.UpdateAction); ok {
			sentRV = ua.GetObject().(*unstructured.Unstructured).GetResourceVersion()
		}
	}
	if sentRV != "20" {
		t.Errorf("update sent resourceVersion %q, want the one validated against (20)", sentRV)
	}

	if err := s.Apply(api.Change{Delete: &api.Ref{Kind: policy.KindOpaStrategy, Name: "api-block"}}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := client.Resource(strategyGVR()).Get(ctx, "api-block", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after delete: %v, want NotFound", err)
	}
}

func TestStoreRefusesWithoutWriting(t *testing.T) {
	attestorRef := &api.Ref{Kind: policy.KindAttestor, Name: "nobody"}
	tests := []struct {
		name   string
		seed   []string
		change api.Change
		check  func(*policy.Snapshot) error
		before func(*Store, *fake.FakeDynamicClient) // between the read and the write
		want   func(error) bool
		msg    string
	}{
		{"duplicate strategy id", []string{seedStrategy}, api.Change{Put: strategy("dup", 5, 2)}, nil, nil,
			isInvalid, "spec.strategyId"},
		{"invalid field", []string{seedStrategy}, api.Change{Put: strategy("bad", 9, 7)}, nil, nil,
			isInvalid, "spec.ruleAction"},
		{"another object is broken", []string{seedStrategy, brokenStrategy}, api.Change{Put: strategy("new", 9, 2)}, nil, nil,
			isInvalid, "broken"},
		{"compile check refuses", []string{seedStrategy}, api.Change{Put: strategy("new", 9, 2)},
			func(*policy.Snapshot) error { return errors.New("rego says no") }, nil,
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "does not compile") }, "rego says no"},
		{"changed by kubectl since read", []string{seedStrategy}, api.Change{Put: strategy("seed", 5, 1)}, nil,
			func(s *Store, c *fake.FakeDynamicClient) {
				u, _ := c.Resource(strategyGVR()).Get(context.Background(), "seed", metav1.GetOptions{})
				u.SetResourceVersion("99")
				u.SetGeneration(u.GetGeneration() + 1) // the API server's doing on a spec change
				_ = unstructured.SetNestedField(u.Object, int64(1), "spec", "ruleAction")
				_, _ = c.Resource(strategyGVR()).Update(context.Background(), u, metav1.UpdateOptions{})
				c.ClearActions()
			}, isConflict, "read as u1/0/"},
		{"deleted by kubectl since read", []string{seedStrategy}, api.Change{Put: strategy("seed", 5, 1)}, nil,
			func(s *Store, c *fake.FakeDynamicClient) {
				_ = c.Resource(strategyGVR()).Delete(context.Background(), "seed", metav1.DeleteOptions{})
				c.ClearActions()
			}, isConflict, "deleted after it was read"},
		{"created by kubectl since read", []string{seedStrategy}, api.Change{Put: strategy("late", 9, 1)}, nil,
			func(s *Store, c *fake.FakeDynamicClient) {
				late := strategy("late", 9, 2)
				u, _ := toUnstructured(late)
				_, _ = c.Resource(strategyGVR()).Create(context.Background(), u, metav1.CreateOptions{})
				c.ClearActions()
			}, isConflict, "created by someone else"},
		{"unknown kind", nil, api.Change{Delete: &api.Ref{Kind: "Nope", Name: "x"}}, nil, nil,
			func(err error) bool { return err != nil }, `unknown kind "Nope"`},
		{"delete of an attestor in use", []string{attestorYAML(t), strings.Replace(policyYAML, ", missing", "", 1)},
			api.Change{Delete: &api.Ref{Kind: policy.KindAttestor, Name: "known"}}, nil, nil, isInvalid, "requiredAttestors"},
		{"delete of nothing writes nothing", []string{seedStrategy}, api.Change{Delete: attestorRef}, nil, nil,
			func(err error) bool { return err == nil }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := storeClient(t, tc.seed...)
			s := NewStore(client, WithCheck(tc.check))
			if tc.before != nil {
				if _, err := s.Snapshot(); err != nil {
					t.Fatal(err)
				}
				tc.before(s, client)
			}
			err := s.Apply(tc.change)
			if !tc.want(err) {
				t.Fatalf("Apply: %v (%T)", err, err)
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if w := writes(client); len(w) > 0 {
				t.Errorf("a refused change wrote: %v", w)
			}
		})
	}
}

// TestStoreIgnoresStatusWrites: the watcher writes status all the time;
// neither its new resourceVersion nor the API server's conflict over it
// may refuse an API change.
func TestStoreIgnoresStatusWrites(t *testing.T) {
	client := storeClient(t, seedStrategy)
	s := NewStore(client)
	ctx := context.Background()
	if _, err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	u, _ := client.Resource(strategyGVR()).Get(ctx, "seed", metav1.GetOptions{})
	u.SetResourceVersion("8")
	_ = unstructured.SetNestedField(u.Object, "x", "status", "observedGeneration")
	if _, err := client.Resource(strategyGVR()).Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	conflicts := 1
	client.PrependReactor("update", "opastrategies", func(k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts > 0 {
			conflicts--
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: Group, Resource: "opastrategies"}, "seed", errors.New("status was written"))
		}
		return false, nil, nil
	})
	if err := s.Apply(api.Change{Put: strategy("seed", 5, 1)}); err != nil {
		t.Fatalf("Apply after a status write: %v", err)
	}
	got, _ := client.Resource(strategyGVR()).Get(ctx, "seed", metav1.GetOptions{})
	if a, _, _ := unstructured.NestedInt64(got.Object, "spec", "ruleAction"); a != 1 {
		t.Errorf("ruleAction %d after the retried update, want 1", a)
	}
}

func TestStoreMapsAPIServerRefusals(t *testing.T) {
	gr := schema.GroupResource{Group: Group, Resource: "opastrategies"}
	tests := []struct {
		name   string
		verb   string
		err    error
		change api.Change
		want   func(error) bool
	}{
		{"update conflict", "update", apierrors.NewConflict(gr, "seed", errors.New("object was modified")),
			api.Change{Put: strategy("seed", 5, 1)}, isConflict},
		{"create races another create", "create", apierrors.NewAlreadyExists(gr, "new"),
			api.Change{Put: strategy("new", 9, 1)}, isConflict},
		{"delete precondition", "delete", apierrors.NewConflict(gr, "seed", errors.New("precondition failed")),
			api.Change{Delete: &api.Ref{Kind: policy.KindOpaStrategy, Name: "seed"}}, isConflict},
		{"name the API server refuses", "create", apierrors.NewInvalid(schema.GroupKind{Group: Group, Kind: "OpaStrategy"}, "New",
			fieldpath.ErrorList{fieldpath.Invalid(fieldpath.NewPath("metadata", "name"), "New", "a lowercase RFC 1123 subdomain")}),
			api.Change{Put: strategy("New", 9, 1)}, isInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := storeClient(t, seedStrategy)
			client.PrependReactor(tc.verb, "opastrategies", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, tc.err
			})
			err := NewStore(client).Apply(tc.change)
			if !tc.want(err) {
				t.Fatalf("Apply: %v (%T)", err, err)
			}
		})
	}
}

func isInvalid(err error) bool {
	var inv *api.InvalidError
	return errors.As(err, &inv)
}

func isConflict(err error) bool {
	var c *api.ConflictError
	return errors.As(err, &c)
}
