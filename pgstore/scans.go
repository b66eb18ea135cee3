package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/scan"
	"github.com/jackc/pgx/v5"
)

// scansChannel is the NOTIFY channel of scan writes.
const scansChannel = "imagegate_scans"

// Scans is the scan store in the database: imports and clears from any
// replica, followed by every replica's scan.Reader.
type Scans struct {
	db     *DB
	once   sync.Once
	notify chan struct{}
}

var (
	_ scan.Store     = (*Scans)(nil)
	_ scan.ChangeLog = (*Scans)(nil)
	_ scan.Notifier  = (*Scans)(nil)
)

// Scans is the DB's scan store.
func (db *DB) Scans() *Scans { return &Scans{db: db, notify: make(chan struct{}, 1)} }

// scanNanos orders scans by their own time; an unknown time is older than
// any known one (as time.Time{} is before any other).
func scanNanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

// Import keeps scan.File's rules in SQL: under each key the row is replaced
// only by a scan with a later time (the upsert's WHERE), the same scan
// again changes nothing, and a record stale under its digest is refused
// (RefuseStale) or skipped, all in one transaction.
func (s *Scans) Import(ctx context.Context, records []*scan.Record, malicious map[string]string, opts ...scan.ImportOption) error {
	set := scan.Settings(opts...)
	ctx, cancel := context.WithTimeout(ctx, s.db.o.writeTimeout)
	defer cancel()
	return pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		// Writers one at a time: seq order is then commit order.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockScanWrites); err != nil {
			return err
		}
		for _, r := range records {
			keys, err := scan.KeysOf(r)
			if err != nil {
				return err
			}
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			at := scanNanos(r.Scan.ScannedAt)
			for i, key := range keys {
				written, err := upsertScan(ctx, tx, key, at, b)
				if err != nil {
					return err
				}
				if written {
					continue
				}
				var stored int64
				var same bool
				if err := tx.QueryRow(ctx, "SELECT scanned_ns, record = $2::jsonb FROM imagegate_scans WHERE key = $1", key, b).Scan(&stored, &same); err != nil {
					return err
				}
				if same || i > 0 {
					continue // the very scan; or the tag moved on to a newer one
				}
				if set.RefuseStale {
					return &scan.StaleError{Image: key[2:], Stored: time.Unix(0, stored).UTC(), Offered: r.Scan.ScannedAt}
				}
				break // skip the record
			}
		}
		for d, reason := range malicious {
			if _, err := tx.Exec(ctx, `INSERT INTO imagegate_malicious (digest, reason, marked, seq) VALUES ($1, $2, true, nextval('imagegate_scan_seq'))
				ON CONFLICT (digest) DO UPDATE SET reason = EXCLUDED.reason, marked = true, seq = EXCLUDED.seq, updated = now()`, d, reason); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, "SELECT pg_notify($1, '')", scansChannel)
		return err
	})
}

// upsertScan writes the scan under key unless the stored one is as new or
// newer; it says whether it wrote.
func upsertScan(ctx context.Context, tx pgx.Tx, key string, at int64, record []byte) (bool, error) {
	var written bool
	err := tx.QueryRow(ctx, `INSERT INTO imagegate_scans (key, scanned_ns, record, seq) VALUES ($1, $2, $3, nextval('imagegate_scan_seq'))
		ON CONFLICT (key) DO UPDATE SET scanned_ns = EXCLUDED.scanned_ns, record = EXCLUDED.record, seq = EXCLUDED.seq
		WHERE imagegate_scans.scanned_ns < EXCLUDED.scanned_ns
		RETURNING true`, key, at, record).Scan(&written)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return written, err
}

// ClearMalicious clears a digest's mark; it says whether there was one.
func (s *Scans) ClearMalicious(ctx context.Context, digest string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.db.o.writeTimeout)
	defer cancel()
	found := false
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockScanWrites); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE imagegate_malicious SET marked = false, seq = nextval('imagegate_scan_seq'), updated = now()
			WHERE digest = $1 AND marked`, digest)
		if err != nil {
			return err
		}
		found = tag.RowsAffected() == 1
		if !found {
			return nil
		}
		_, err = tx.Exec(ctx, "SELECT pg_notify($1, '')", scansChannel)
		return err
	})
	return found, err
}

// Changes reads scans and marks written after `after`, in seq order.
func (s *Scans) Changes(ctx context.Context, after uint64, limit int) ([]scan.Change, uint64, error) {
	rows, err := s.db.pool.Query(ctx, `
		SELECT seq, key, record, '', false FROM imagegate_scans WHERE seq > $1
		UNION ALL
		SELECT seq, 'm:' || digest, NULL, reason, NOT marked FROM imagegate_malicious WHERE seq > $1
		ORDER BY 1 LIMIT $2`, int64(min(after, math.MaxInt64)), limit)
	if err != nil {
		return nil, after, err
	}
	defer rows.Close()
	var out []scan.Change
	seq := after
	for rows.Next() {
		var n int64
		var c scan.Change
		var record []byte
		if err := rows.Scan(&n, &c.Key, &record, &c.Reason, &c.Cleared); err != nil {
			return nil, after, err
		}
		if record != nil {
			var r scan.Record
			if err := json.Unmarshal(record, &r); err != nil {
				return nil, after, fmt.Errorf("scan record %s: %w", c.Key, err)
			}
			c.Scan = &r.Scan
		}
		out = append(out, c)
		seq = uint64(n)
	}
	if err := rows.Err(); err != nil {
		return nil, after, err
	}
	return out, seq, nil
}

// Notify fires when another write may have landed: a notification from
// any replica, or the listener (re)connecting after it could have missed
// some. The first call starts the listener.
func (s *Scans) Notify() <-chan struct{} {
	s.once.Do(func() { go s.listen(s.db.ctx) })
	return s.notify
}

func (s *Scans) signal() {
	select {
	case s.notify <- struct{}{}:
	default: // one pending refresh covers every write so far
	}
}

// listen holds a connection of its own LISTENing on the scans channel,
// reconnecting with backoff while the database is away.
func (s *Scans) listen(ctx context.Context) {
	const minBackoff, maxBackoff = 250 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, func() { backoff = minBackoff })
		if ctx.Err() != nil {
			return
		}
		s.db.o.logger.Debug("scan notifications interrupted; reconnecting", "error", err.Error(), "in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (s *Scans) listenOnce(ctx context.Context, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+scansChannel); err != nil {
		return err
	}
	connected()
	s.signal() // writes while not listening were not announced
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.signal()
	}
}

var _ scan.Getter = (*Scans)(nil)

// Get reads the scan stored under key, for a record a replica's index
// evicted; nil when there is none.
func (s *Scans) Get(ctx context.Context, key string) (*facts.Scan, error) {
	var record []byte
	err := s.db.pool.QueryRow(ctx, "SELECT record FROM imagegate_scans WHERE key = $1", key).Scan(&record)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r scan.Record
	if err := json.Unmarshal(record, &r); err != nil {
		return nil, fmt.Errorf("scan record %s: %w", key, err)
	}
	return &r.Scan, nil
}
