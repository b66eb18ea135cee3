package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/pgstore"
	"github.com/imagegate/imagegate/scan"
	"github.com/prometheus/client_golang/prometheus"
)

// stores opens what the store flags name: a bbolt file by path, or
// PostgreSQL by a postgres:// URL (one pool per database however many flags
// name it).
type stores struct {
	log *slog.Logger
	reg prometheus.Registerer
	dbs map[string]*pgstore.DB
}

func newStores(log *slog.Logger, reg prometheus.Registerer) *stores {
	return &stores{log: log, reg: reg, dbs: map[string]*pgstore.DB{}}
}

func (s *stores) db(ctx context.Context, url string) (*pgstore.DB, error) {
	if db, ok := s.dbs[url]; ok {
		return db, nil
	}
	opts := []pgstore.Option{pgstore.WithLogger(s.log)}
	if s.reg != nil {
		opts = append(opts, pgstore.WithRegisterer(s.reg))
	}
	db, err := pgstore.Open(ctx, url, opts...)
	if err != nil {
		return nil, err
	}
	s.dbs[url] = db
	return db, nil
}

// scan is the scan store spec names, and the log of its writes.
func (s *stores) scan(ctx context.Context, spec string) (scan.Store, scan.ChangeLog, error) {
	if !pgstore.IsURL(spec) {
		f := scan.NewFile(spec)
		return f, f, nil
	}
	db, err := s.db(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	sc := db.Scans()
	return sc, sc, nil
}

// audit is the event store spec names, for serve to write.
func (s *stores) audit(ctx context.Context, spec string) (audit.EventStore, error) {
	if !pgstore.IsURL(spec) {
		return audit.OpenStore(spec)
	}
	db, err := s.db(ctx, spec)
	if err != nil {
		return nil, err
	}
	return db.Events()
}

// querier is the event store spec names, for queries only.
func (s *stores) querier(ctx context.Context, spec string) (audit.Querier, error) {
	if !pgstore.IsURL(spec) {
		return audit.ReadStore(spec), nil
	}
	db, err := s.db(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("--store: %w", err)
	}
	return db.Events()
}

func (s *stores) close() {
	for _, db := range s.dbs {
		db.Close()
	}
}
