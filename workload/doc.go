// Package workload extracts what admission decides on from Kubernetes objects:
// the namespace, the pod labels (a controller's pod-template labels) and every
// image of every container, init container and ephemeral container, parsed as
// a Docker reference.
//
// It decodes only the fields it needs, so the webhook's hot path never builds a
// full Pod object.
package workload
