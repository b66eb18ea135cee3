// Package kube makes the policy objects Kubernetes custom resources: it
// generates their CustomResourceDefinitions from the policy Go types, watches
// the resources with informers and turns them into policy snapshots, writes
// each object's status conditions, and validates imagegate's own resources
// when the API server asks (POST /validate-policy). Store is the management
// API's api.Store over the same resources. PullSecrets turns a pod's
// imagePullSecrets and its service account's into a registry keychain for
// signature verification.
package kube
