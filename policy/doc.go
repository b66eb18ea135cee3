// Package policy holds imagegate's policy objects (Attestor, BinarySecurityPolicy
// and OpaStrategy), loads them from directories of YAML or JSON files, validates
// them with field paths, and freezes a valid set into an immutable Snapshot.
//
// An invalid set never becomes a Snapshot: the loader reports every error it
// finds, with file, document and field path, and returns nothing else. That keeps
// a half-loaded policy set off the admission path.
package policy
