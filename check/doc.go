// Package check decides workloads read from files as the webhook would, and
// presents the outcome for people and CI: per resource, per image, where it
// was written, what could not be verified, and a summary. imagegate check
// and imagegate test share it.
package check
