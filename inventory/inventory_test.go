package inventory

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The store holds trimmed pods only, found by image, digest and owner.
func TestTrimmedAndIndexed(t *testing.T) {
	d := "sha256:" + strings.Repeat("b", 64)
	ctl := true
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "p", Annotations: map[string]string{"big": strings.Repeat("x", 4096)},
			OwnerReferences: []metav1.OwnerReference{{Kind: "StatefulSet", Name: "db", Controller: &ctl}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1", Env: []corev1.EnvVar{{Name: "A", Value: "B"}}}},
			Volumes: []corev1.Volume{{Name: "v"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "c", ImageID: "docker-pullable://nginx@" + d}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady}}},
	}
	client := fake.NewClientset(p, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "q"}})
	var changed []Key
	inv, err := New(client, WithOnChange(func(k Key) { changed = append(changed, k) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	inv.Start(ctx)
	defer func() { cancel(); inv.Shutdown() }()
	if !inv.WaitSynced(ctx) {
		t.Fatal("not synced")
	}
	want := Key{"a", "StatefulSet", "db"}
	w, ok := inv.Workload(want)
	if !ok || len(w.Pods) != 1 {
		t.Fatalf("workload %v: %+v %v", want, w, ok)
	}
	got := w.Pods[0]
	if len(got.Annotations) != 0 || len(got.ManagedFields) != 0 || len(got.Spec.Volumes) != 0 || len(got.Spec.Containers[0].Env) != 0 || len(got.Status.Conditions) != 0 {
		t.Errorf("pod not trimmed: %+v", got)
	}
	if got.Status.ContainerStatuses[0].ImageID != d {
		t.Errorf("pulled digest %q, want %q", got.Status.ContainerStatuses[0].ImageID, d)
	}
	if ks := inv.ByDigest(d); len(ks) != 1 || ks[0] != want {
		t.Errorf("by digest: %v", ks)
	}
	if ks := inv.ByImage("nginx:1"); len(ks) != 1 || ks[0] != want {
		t.Errorf("by image: %v", ks)
	}
	if len(changed) == 0 || changed[0] != want && changed[len(changed)-1] != want {
		t.Errorf("changes %v", changed)
	}
}
