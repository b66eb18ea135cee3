package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/policy"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/fake"
)

// watchClient is a fake API server holding the three CRDs and docs.
func watchClient(t *testing.T, docs ...string) *fake.FakeDynamicClient {
	t.Helper()
	lists := map[schema.GroupVersionResource]string{crdGVR: "CustomResourceDefinitionList"}
	var objs []runtime.Object
	for _, r := range Resources() {
		lists[r.GVR()] = r.Kind + "List"
		crd := &unstructured.Unstructured{}
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		crd.SetName(r.CRDName())
		objs = append(objs, crd)
	}
	for _, d := range docs {
		objs = append(objs, fromYAML(t, d))
	}
	return fake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists, objs...)
}

// TestWatcherDeletedResourcesAreRefused: deleting every custom resource
// gives the watcher an empty, valid set; with the guard serve puts between
// the watcher and the set in force, it is refused and the strategy stays.
func TestWatcherDeletedResourcesAreRefused(t *testing.T) {
	client := watchClient(t, strings.Replace(strategyYAML, "%s", "app-*", 1))
	w, err := NewWatcher(client, WithDebounce(10*time.Millisecond), WithStatus(false))
	if err != nil {
		t.Fatal(err)
	}
	g := policy.NewEmptyGuard(false)
	type result struct {
		strategies int
		err        error
	}
	results := make(chan result, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, func(s *policy.Snapshot, err error) {
		if err == nil {
			err = g.Check(s)
		}
		if err != nil {
			results <- result{err: err}
			return
		}
		g.Loaded(s)
		results <- result{strategies: len(s.Strategies())}
	})
	next := func() result {
		t.Helper()
		select {
		case r := <-results:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("the watcher reported nothing")
		}
		return result{}
	}
	if r := next(); r.err != nil || r.strategies != 1 {
		t.Fatalf("first load: %+v", r)
	}
	strategies := client.Resource(schema.GroupVersionResource{Group: Group, Version: Version, Resource: "opastrategies"})
	if err := strategies.Delete(ctx, "s1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := next(); !errors.Is(r.err, policy.ErrEmptySet) {
		t.Fatalf("after deleting every resource: %+v; want the empty set refused", r)
	}
	if !strings.Contains(g.Status(), "refused") {
		t.Errorf("Status %q", g.Status())
	}
	if _, err := strategies.Create(ctx, fromYAML(t, strings.Replace(strategyYAML, "%s", "app-*", 1)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := next(); r.err != nil || r.strategies != 1 {
		t.Fatalf("recreated: %+v", r)
	}
}
