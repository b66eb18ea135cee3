// Package admission decides one workload: it asks a facts source about the
// workload's images (only for the attestors the policies require there) and
// evaluates the current engine. imagegate check and the webhook both decide
// through a Decider, so what CI checks is what the cluster enforces.
package admission
