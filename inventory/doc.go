// Package inventory is the set of workloads running in the cluster: pods
// and the controllers that own them, watched with informers whose transform
// keeps only what a decision needs (names, labels, owners, service account,
// pull secrets, container images and the digests the kubelet pulled), and
// indexed by namespace, owner, image and digest. A workload is a pod's top
// controller (a Deployment through its ReplicaSet, a CronJob through its
// Job, a StatefulSet, DaemonSet, ReplicationController), or the pod itself.
package inventory
