package audit

import (
	"context"
	"log/slog"
	"time"
)

// Querier answers queries of stored events, newest first, a page at a time:
// the bbolt Store, or PostgreSQL shared by every replica (package pgstore).
// Both take the same Query and the same page tokens (the last event id).
type Querier interface {
	Query(q Query) (*Page, error)
}

// EventStore is where serve keeps events: a sink, queried by imagegate
// events and GET /api/v1/events, and pruned past the retention.
type EventStore interface {
	Sink
	Querier
	RunRetention(ctx context.Context, retention, interval time.Duration, log *slog.Logger)
}

var _ EventStore = (*Store)(nil)

// Repositories are the forms of an image's repository that the image
// filter matches: as written (without tag or digest) and canonical.
func Repositories(ref string) []string { return repositories(ref) }
