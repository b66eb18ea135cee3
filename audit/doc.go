// Package audit records the admission decisions that are not a plain pass —
// blocked, alerted, allowed by an allow strategy, unsigned, or undecided — as
// events for security teams, and keeps them where those teams look: JSON
// lines on stdout or in a rotating file, and a local store they can query
// (imagegate events, GET /api/v1/events).
//
// Recording happens off the admission path: the webhook hands the raw
// decision to a Recorder, which queues it without blocking (dropping and
// counting when the queue is full) and builds and writes events in the
// background, so a slow or broken sink never slows admission.
package audit
