package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/imagegate/imagegate/audit"
)

var _ audit.Aggregator = (*Events)(nil)

// statsLimit bounds the rows one dimension's grouping returns.
const statsLimit = 200000

// statsSQL groups the admission events of [$1, $2) by hour, action and a
// dimension's value; images and strategies are counted once per event.
var statsSQL = map[string]string{
	audit.ByAction: `SELECT h, '', a, count(*) FROM (SELECT date_trunc('hour', at AT TIME ZONE 'UTC') h, actions FROM imagegate_audit_events
		WHERE type = 'admission' AND at >= $1 AND at < $2) e, unnest(e.actions) a GROUP BY 1, 2, 3 LIMIT $3`,
	audit.ByCluster: `SELECT h, cluster_id, a, count(*) FROM (SELECT date_trunc('hour', at AT TIME ZONE 'UTC') h, cluster_id, actions FROM imagegate_audit_events
		WHERE type = 'admission' AND at >= $1 AND at < $2) e, unnest(e.actions) a GROUP BY 1, 2, 3 LIMIT $3`,
	audit.ByNamespace: `SELECT h, namespace, a, count(*) FROM (SELECT date_trunc('hour', at AT TIME ZONE 'UTC') h, namespace, actions FROM imagegate_audit_events
		WHERE type = 'admission' AND at >= $1 AND at < $2) e, unnest(e.actions) a GROUP BY 1, 2, 3 LIMIT $3`,
	// The repository as written: without the digest, then without the tag.
	audit.ByImage: `SELECT date_trunc('hour', at AT TIME ZONE 'UTC'), regexp_replace(regexp_replace(img->>'image', '@.*$', ''), ':[^/:]*$', ''), img->>'action', count(DISTINCT id)
		FROM imagegate_audit_events, jsonb_array_elements(event->'images') img
		WHERE type = 'admission' AND at >= $1 AND at < $2 AND coalesce(img->>'action', 'pass') <> 'pass' GROUP BY 1, 2, 3 LIMIT $3`,
	audit.ByStrategy: `SELECT date_trunc('hour', at AT TIME ZONE 'UTC'), coalesce(nullif(s->>'name', ''), s->>'id'), img->>'action', count(DISTINCT id)
		FROM imagegate_audit_events, jsonb_array_elements(event->'images') img, jsonb_array_elements(coalesce(img->'strategies', '[]')) s
		WHERE type = 'admission' AND at >= $1 AND at < $2 AND coalesce(img->>'action', 'pass') <> 'pass' GROUP BY 1, 2, 3 LIMIT $3`,
}

// Stats answers q by grouping the window's events, one query per
// dimension the answer needs; the day partitions outside the window are
// not read.
func (e *Events) Stats(q audit.StatsQuery) (*audit.Stats, error) {
	if err := q.Normalize(time.Now()); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(e.db.ctx, queryTimeout)
	defer cancel()
	sb := audit.NewStatsBuilder(q)
	for _, dim := range q.Dims() {
		rows, err := e.db.pool.Query(ctx, statsSQL[dim], q.Since, q.Until, statsLimit)
		if err != nil {
			return nil, fmt.Errorf("audit stats by %s: %w", dim, err)
		}
		for rows.Next() {
			c := audit.Cell{Dim: dim}
			if err := rows.Scan(&c.Hour, &c.Value, &c.Action, &c.Count); err != nil {
				rows.Close()
				return nil, fmt.Errorf("audit stats by %s: %w", dim, err)
			}
			c.Hour = c.Hour.UTC()
			sb.Add(c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("audit stats by %s: %w", dim, err)
		}
	}
	return sb.Stats(), nil
}
