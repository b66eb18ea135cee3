package pgstore

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Events is the audit event store in the database: a sink for the
// recorder's batches (COPY into the day's partition), queried by imagegate
// events and GET /api/v1/events, pruned by dropping whole days.
//
// A batch the database does not take (it is away, or slower than the write
// timeout) is held and retried with the next batch and every retry
// interval; past the backlog bound the oldest held events are dropped and
// counted. The recorder's own queue in front stays bounded too, so nothing
// here ever reaches an admission.
type Events struct {
	db *DB

	mu      sync.Mutex // one write at a time: held events keep their order
	backlog []*audit.Event
	days    map[int64]bool // days known to have a partition (bounded: see ensureDays)

	held    prometheus.Gauge
	dropped prometheus.Counter
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
}

var _ audit.EventStore = (*Events)(nil)

// Events is the DB's audit event store; Close stops its retries.
func (db *DB) Events() (*Events, error) {
	e := &Events{db: db, days: map[int64]bool{}, stop: make(chan struct{}), done: make(chan struct{}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{Name: "imagegate_audit_postgres_backlog",
			Help: "Audit events held for PostgreSQL while it does not take them (retried; bounded)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "imagegate_audit_postgres_dropped_total",
			Help: "Audit events dropped because PostgreSQL did not take them and the backlog was full."}),
	}
	if r := db.o.registerer; r != nil {
		if err := errors.Join(r.Register(e.held), r.Register(e.dropped)); err != nil {
			return nil, err
		}
	}
	go e.retry()
	return e, nil
}

// Name is the sink's metric label.
func (e *Events) Name() string { return "postgres" }

// Write stores a batch, after any held events. On failure the events are
// held (the error says how many, and how many were dropped).
func (e *Events) Write(events []*audit.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.backlog = append(e.backlog, events...)
	return e.flush()
}

func (e *Events) flush() error {
	if len(e.backlog) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(e.db.ctx, e.db.o.writeTimeout)
	defer cancel()
	err := e.insert(ctx, e.backlog)
	if err == nil {
		clear(e.backlog)
		e.backlog = e.backlog[:0]
		e.held.Set(0)
		return nil
	}
	dropped := 0
	if over := len(e.backlog) - e.db.o.backlog; over > 0 {
		dropped = over
		e.dropped.Add(float64(over))
		e.backlog = append(e.backlog[:0:0], e.backlog[over:]...)
	}
	e.held.Set(float64(len(e.backlog)))
	return fmt.Errorf("postgres: %w (%d events held for retry, %d dropped)", err, len(e.backlog), dropped)
}

// retry writes held events while no new batch comes.
func (e *Events) retry() {
	defer close(e.done)
	t := time.NewTicker(e.db.o.retryEvery)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		e.mu.Lock()
		if err := e.flush(); err != nil {
			e.db.o.logger.Debug("held audit events not written yet", "error", err.Error())
		}
		e.mu.Unlock()
	}
}

// Close stops retrying, after one last try to write what is held.
func (e *Events) Close() error {
	e.closing.Do(func() { close(e.stop) })
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.flush()
}

// Held is how many events wait for the database.
func (e *Events) Held() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.backlog)
}

var columns = []string{"id", "at", "cluster_id", "type", "namespace", "actions", "repos", "principal", "api_action", "event"}

// insert copies events into the table in one transaction, creating the
// partitions of their days first.
func (e *Events) insert(ctx context.Context, events []*audit.Event) error {
	rows := make([][]any, 0, len(events))
	days := map[int64]bool{}
	allRepos := map[string]bool{}
	for _, ev := range events {
		id, err := hex.DecodeString(ev.ID)
		if err != nil || len(id) != 16 {
			return fmt.Errorf("event id %q is not 16 hex bytes", ev.ID)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		typ, principal, apiAction := audit.TypeAdmission, "", ""
		if ev.Type == audit.TypeRuntime {
			typ = audit.TypeRuntime
		}
		if ev.IsAPI() {
			typ = audit.TypeAPI
			if ev.API != nil {
				principal, apiAction = ev.API.Principal, ev.API.Action
			}
		}
		repos := []string{}
		seen := map[string]bool{}
		for _, img := range ev.Images {
			for _, r := range audit.Repositories(img.Image) {
				if !seen[r] {
					seen[r] = true
					repos = append(repos, r)
				}
			}
		}
		actions := ev.Actions
		if actions == nil {
			actions = []string{}
		}
		for _, r := range repos {
			allRepos[r] = true
		}
		// at is the time at the head of the id (the event's time), so that
		// the query order (at, id) is the id's.
		at := idTime(id)
		days[dayOf(at)] = true
		rows = append(rows, []any{id, at, ev.ClusterID, typ, ev.Namespace, actions, repos, principal, apiAction, b})
	}
	if err := e.ensureDays(ctx, days); err != nil {
		return err
	}
	repoList := slices.Sorted(maps.Keys(allRepos)) // sorted: concurrent writers lock them in one order
	err := pgx.BeginFunc(ctx, e.db.pool, func(tx pgx.Tx) error {
		if err := addRepos(ctx, tx, repoList); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"imagegate_audit_events"}, columns, pgx.CopyFromRows(rows))
		return err
	})
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
		return insertMissing(ctx, e.db.pool, repoList, rows)
	}
	return err
}

// addRepos records repositories for the image filter's glob matching.
func addRepos(ctx context.Context, tx pgx.Tx, repos []string) error {
	if len(repos) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, "INSERT INTO imagegate_audit_repos (repo) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", repos)
	return err
}

// idTime is the time at the head of an event id, in nanoseconds.
func idTime(id []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(id[:8]))).UTC()
}

const uniqueViolation = "23505"

// insertSQL stores one event unless it is there: the slow path after COPY
// met an event already stored.
var insertSQL = "INSERT INTO imagegate_audit_events (" + strings.Join(columns, ", ") +
	") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"

// insertMissing writes the rows the table does not have yet. A batch is
// found partly stored when an earlier try committed but its
// acknowledgement came after the write timeout (or the connection broke
// first): that try was held, and COPY, which cannot skip rows, refuses all
// of its retries.
func insertMissing(ctx context.Context, pool *pgxpool.Pool, repos []string, rows [][]any) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := addRepos(ctx, tx, repos); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for _, r := range rows {
			b.Queue(insertSQL, r...)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}
