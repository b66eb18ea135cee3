package inventory

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// realisticPod is a pod as the API server sends it: two containers with
// environment, mounts and resources, volumes, managed fields, conditions.
func realisticPod(i int) *corev1.Pod {
	ctl := true
	c := func(name string) corev1.Container {
		return corev1.Container{Name: name, Image: fmt.Sprintf("registry.example.com/team/app%d:1.%d", i%1000, i%7),
			Env:          []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "token", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}},
			Ports:        []corev1.ContainerPort{{ContainerPort: 8080, Name: "http"}}, Args: []string{"--listen=:8080", "--metrics=:9090"}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns%d", i%10), Name: fmt.Sprintf("app-%d-7d9f8c6b5-x%04d", i%1000, i), UID: "u",
			ResourceVersion: "123456", Labels: map[string]string{"app": fmt.Sprintf("app%d", i%1000), "pod-template-hash": "7d9f8c6b5"},
			Annotations:     map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-01T00:00:00Z", "prometheus.io/scrape": "true"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: fmt.Sprintf("app-%d-7d9f8c6b5", i%1000), UID: "rs", Controller: &ctl}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: "Update", FieldsV1: &metav1.FieldsV1{Raw: make([]byte, 1500)}}, {Manager: "kubelet", Operation: "Update", Subresource: "status", FieldsV1: &metav1.FieldsV1{Raw: make([]byte, 1200)}}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{c("app"), c("sidecar")}, ServiceAccountName: "app",
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}, {Name: "token"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: "True"}, {Type: corev1.ContainersReady, Status: "True"}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ImageID: fmt.Sprintf("registry.example.com/team/app%d@sha256:%064x", i%1000, i%1000)}}},
	}
}

// BenchmarkInventoryMemory reports the heap the pod store holds for
// 10,000 pods, trimmed by the informer's transform and indexed as the
// inventory indexes them, against the same pods untrimmed.
func BenchmarkInventoryMemory(b *testing.B) {
	const pods = 10_000
	for _, c := range []struct {
		name string
		trim bool
	}{{"trimmed", true}, {"untrimmed", false}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				before := heap()
				store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{byOwner: ownerIndex, byImage: imageIndex, byDigest: digestIndex})
				for i := range pods {
					var obj any = realisticPod(i) // what a watch decodes: a fresh object
					if c.trim {
						obj, _ = trimPod(obj)
					}
					if err := store.Add(obj); err != nil {
						b.Fatal(err)
					}
				}
				after := heap()
				b.ReportMetric(float64(after-before)/(1<<20), "MB/10k-pods")
				runtime.KeepAlive(store)
			}
		})
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
