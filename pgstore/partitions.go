package pgstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Partitions are days (UTC), named imagegate_audit_events_YYYYMMDD.
const (
	partitionPrefix = "imagegate_audit_events_"
	partitionLayout = "20060102"
	day             = 24 * time.Hour
	// maxKnownDays bounds the memory of which partitions exist.
	maxKnownDays = 64
)

// dayOf is the first instant of t's UTC day, in Unix seconds.
func dayOf(t time.Time) int64 { return t.UTC().Truncate(day).Unix() }

// ensureDays creates the partitions of days this process has not seen yet.
// Creating takes an advisory lock: replicas creating the same day at once
// would otherwise collide in the catalog.
func (e *Events) ensureDays(ctx context.Context, days map[int64]bool) error {
	var missing []int64
	for d := range days {
		if !e.days[d] {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, e.db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockPartitions); err != nil {
			return err
		}
		for _, d := range missing {
			from := time.Unix(d, 0).UTC()
			name := partitionPrefix + from.Format(partitionLayout)
			if _, err := tx.Exec(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF imagegate_audit_events FOR VALUES FROM ('%s') TO ('%s')",
				pgx.Identifier{name}.Sanitize(), from.Format(time.RFC3339), from.Add(day).Format(time.RFC3339))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit partitions: %w", err)
	}
	if len(e.days)+len(missing) > maxKnownDays {
		clear(e.days) // forgetting only costs a CREATE ... IF NOT EXISTS
	}
	for _, d := range missing {
		e.days[d] = true
	}
	return nil
}

// DropBefore drops the partitions whose whole day is before `before`, and
// returns their names. Events are thus kept up to a day past the retention.
func (e *Events) DropBefore(ctx context.Context, before time.Time) ([]string, error) {
	rows, err := e.db.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'imagegate_audit_events'::regclass`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, name := range names {
		from, err := time.Parse(partitionLayout, strings.TrimPrefix(name, partitionPrefix))
		if err != nil || !strings.HasPrefix(name, partitionPrefix) || from.Add(day).After(before) {
			continue
		}
		err = pgx.BeginFunc(ctx, e.db.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockPartitions); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
			return err
		})
		if err != nil {
			return dropped, err
		}
		dropped = append(dropped, name)
	}
	if len(dropped) > 0 {
		e.mu.Lock()
		clear(e.days)
		e.mu.Unlock()
	}
	return dropped, nil
}

// RunRetention drops partitions past retention, and creates today's and
// tomorrow's ahead of the first writes, now and every interval until ctx
// ends.
func (e *Events) RunRetention(ctx context.Context, retention, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		now := e.db.o.now()
		e.mu.Lock()
		err := e.ensureDays(ctx, map[int64]bool{dayOf(now): true, dayOf(now.Add(day)): true})
		e.mu.Unlock()
		if err != nil {
			log.Warn("audit partitions not created ahead", "error", err.Error())
		}
		dropped, err := e.DropBefore(ctx, now.Add(-retention))
		switch {
		case err != nil:
			log.Warn("audit partitions not pruned", "error", err.Error())
		case len(dropped) > 0:
			log.Info("audit partitions dropped", "partitions", dropped, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
