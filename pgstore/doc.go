// Package pgstore keeps imagegate's shared state in PostgreSQL, for several
// replicas (and clusters) at once: scan facts and the malicious feed
// (Scans, a scan.Store and scan.ChangeLog whose writes are announced with
// LISTEN/NOTIFY so every replica's in-memory index follows within a
// second), and audit events (Events, an audit.EventStore in tables
// partitioned by day, pruned by dropping partitions).
//
// Admissions never read the database: they read the scan index in memory
// and hand audit events to the recorder's queue. The database being away
// leaves the scan facts as last read and holds audit events in a bounded
// backlog, then drops and counts them.
//
// The schema is migrated at Open from the embedded migrations/*.sql, each
// once, in order, under an advisory lock so that replicas starting together
// do not race.
package pgstore
