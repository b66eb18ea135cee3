package inventory

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// trimPod keeps of a pod what a decision and the inventory's indexes need:
// everything else (volumes, env, resources, conditions, managed fields) is
// dropped before the object reaches the informer's store.
func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone: the store only needs its key
	}
	out := &corev1.Pod{ObjectMeta: trimMeta(p.ObjectMeta)}
	out.Spec.ServiceAccountName = p.Spec.ServiceAccountName
	if len(p.Spec.ImagePullSecrets) > 0 {
		out.Spec.ImagePullSecrets = append([]corev1.LocalObjectReference(nil), p.Spec.ImagePullSecrets...)
	}
	out.Spec.Containers = make([]corev1.Container, len(p.Spec.Containers))
	for i, c := range p.Spec.Containers {
		out.Spec.Containers[i] = corev1.Container{Name: c.Name, Image: c.Image}
	}
	if len(p.Spec.InitContainers) > 0 {
		out.Spec.InitContainers = make([]corev1.Container, len(p.Spec.InitContainers))
		for i, c := range p.Spec.InitContainers {
			out.Spec.InitContainers[i] = corev1.Container{Name: c.Name, Image: c.Image}
		}
	}
	if len(p.Spec.EphemeralContainers) > 0 {
		out.Spec.EphemeralContainers = make([]corev1.EphemeralContainer, len(p.Spec.EphemeralContainers))
		for i, c := range p.Spec.EphemeralContainers {
			out.Spec.EphemeralContainers[i].Name, out.Spec.EphemeralContainers[i].Image = c.Name, c.Image
		}
	}
	for _, ss := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses} {
		for _, s := range ss {
			if d := digestOf(s.ImageID); d != "" {
				out.Status.ContainerStatuses = append(out.Status.ContainerStatuses, corev1.ContainerStatus{Name: s.Name, ImageID: d})
			}
		}
	}
	return out, nil
}

// trimController keeps a ReplicaSet's or Job's identity and owners: all the
// inventory asks of one is who owns it.
func trimController(obj any) (any, error) {
	switch c := obj.(type) {
	case *appsv1.ReplicaSet:
		return &appsv1.ReplicaSet{ObjectMeta: trimMeta(c.ObjectMeta)}, nil
	case *batchv1.Job:
		return &batchv1.Job{ObjectMeta: trimMeta(c.ObjectMeta)}, nil
	}
	return obj, nil
}

func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion, Labels: m.Labels}
	if ref := metav1.GetControllerOfNoCopy(&m); ref != nil {
		out.OwnerReferences = []metav1.OwnerReference{{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, UID: ref.UID, Controller: ref.Controller}}
	}
	if v, ok := m.Annotations[ViolationAnnotation]; ok {
		// Kept so that the annotating action can tell what it wrote.
		out.Annotations = map[string]string{ViolationAnnotation: v}
	}
	return out
}

// ViolationAnnotation is the annotation --runtime-action=annotate writes on
// a violating pod.
const ViolationAnnotation = "imagegate.dev/runtime-violation"

// digestOf is the sha256 digest of a kubelet imageID
// (docker-pullable://repo@sha256:…, repo@sha256:…, sha256:…).
func digestOf(imageID string) string {
	i := strings.LastIndex(imageID, "sha256:")
	if i < 0 || len(imageID)-i != len("sha256:")+64 {
		return ""
	}
	return imageID[i:]
}
