package workload

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// kubeTypes are the Kubernetes types that strict decoding checks manifests
// against: every field a Pod or pod template may have, which the reduced
// types of object.go do not list.
var kubeTypes = map[string]reflect.Type{
	"Pod":                   reflect.TypeOf(corev1.Pod{}),
	"Deployment":            reflect.TypeOf(appsv1.Deployment{}),
	"ReplicaSet":            reflect.TypeOf(appsv1.ReplicaSet{}),
	"StatefulSet":           reflect.TypeOf(appsv1.StatefulSet{}),
	"DaemonSet":             reflect.TypeOf(appsv1.DaemonSet{}),
	"Job":                   reflect.TypeOf(batchv1.Job{}),
	"CronJob":               reflect.TypeOf(batchv1.CronJob{}),
	"ReplicationController": reflect.TypeOf(corev1.ReplicationController{}),
}
