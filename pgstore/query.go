package pgstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/policy"
	"github.com/jackc/pgx/v5"
)

// queryTimeout bounds one page.
const queryTimeout = 10 * time.Second

// Query answers q as the bbolt store does: newest first by event id, the
// page token being the last id of the previous page (keyset pagination:
// no page costs more than the first). Time bounds are applied to the id
// (nanoseconds) and, for partition pruning, to the microsecond column at.
func (e *Events) Query(q audit.Query) (*audit.Page, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = audit.DefaultLimit
	}
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	switch q.Type {
	case audit.TypeAPI:
		where = append(where, "type = 'api'")
	case audit.TypeAdmission:
		where = append(where, "type = 'admission'")
	case audit.TypeRuntime:
		where = append(where, "type = 'runtime'")
	}
	// type = 'api' matches the partial indexes of API calls' fields.
	if q.Principal != "" {
		where = append(where, "type = 'api' AND principal = "+arg(q.Principal))
	}
	if len(q.APIActions) > 0 {
		where = append(where, "type = 'api'") // each action's condition below
	}
	if q.ClusterID != "" {
		where = append(where, "cluster_id = "+arg(q.ClusterID))
	}
	if q.Namespace != "" {
		where = append(where, "type <> 'api' AND namespace = "+arg(q.Namespace))
	}
	if len(q.Actions) > 0 {
		where = append(where, "actions && "+arg(q.Actions))
	}
	ctx, cancel := context.WithTimeout(e.db.ctx, queryTimeout)
	defer cancel()
	if q.Image != "" && q.Image != "*" {
		cond, err := e.imageFilter(ctx, q.Image, arg)
		if err != nil {
			return nil, err
		}
		if cond == "" {
			return &audit.Page{Events: []*audit.Event{}}, nil
		}
		where = append(where, cond)
	}
	if !q.Since.IsZero() {
		lower := make([]byte, 16)
		binary.BigEndian.PutUint64(lower[:8], uint64(max(q.Since.UnixNano(), 0)))
		where = append(where, "id >= "+arg(lower), "at >= "+arg(q.Since))
	}
	if !q.Until.IsZero() {
		upper := bytes.Repeat([]byte{0xff}, 16)
		binary.BigEndian.PutUint64(upper[:8], uint64(max(q.Until.UnixNano(), 0)))
		where = append(where, "id <= "+arg(upper), "at <= "+arg(q.Until))
	}
	if q.PageToken != "" {
		tok, _ := hex.DecodeString(q.PageToken) // Validate checked it
		// Keyset: after the token's (at, id); at alone prunes partitions.
		at := idTime(tok).Truncate(time.Microsecond)
		where = append(where, "(at, id) < ("+arg(at)+", "+arg(tok)+")", "at <= "+arg(at))
	}
	// (at, id) is id's order (at heads the id), read partition by
	// partition from the newest; one more than the page: is there a next?
	order := " ORDER BY at DESC, id DESC LIMIT " + arg(limit+1)
	pageSQL := func(cols string, extra ...string) string {
		sql := "SELECT " + cols + " FROM imagegate_audit_events"
		if w := append(slices.Clip(where), extra...); len(w) > 0 {
			sql += " WHERE " + strings.Join(w, " AND ")
		}
		return sql + order
	}
	sql := pageSQL("event")
	if len(q.APIActions) > 0 {
		// A page per action, each read in index order, merged: api_action
		// = ANY(...) would gather every match of every day and sort them.
		var parts []string
		for _, a := range q.APIActions {
			parts = append(parts, "("+pageSQL("at, id, event", "api_action = "+arg(a))+")")
		}
		sql = "SELECT event FROM (" + strings.Join(parts, " UNION ALL ") + ") p" + order
	}
	rows, err := e.db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	defer rows.Close()
	page := &audit.Page{Events: []*audit.Event{}}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		if len(page.Events) == limit {
			page.NextPageToken = page.Events[limit-1].ID
			break
		}
		var ev audit.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return nil, fmt.Errorf("audit event: %w", err)
		}
		page.Events = append(page.Events, &ev)
	}
	return page, rows.Err()
}

// maxGlobRepos bounds the repositories an image glob is turned into;
// a glob matching more is applied to each event's repositories instead
// (then many events match, and a page fills fast).
const maxGlobRepos = 1000

// imageFilter is the condition of an image glob: the repositories it
// matches, looked up in the index of the events' repositories, or ""
// when no repository ever written matches.
func (e *Events) imageFilter(ctx context.Context, glob string, arg func(any) string) (string, error) {
	if !policy.IsGlob(glob) {
		return "repos @> ARRAY[" + arg(glob) + "]::text[]", nil
	}
	re, err := globRegexp(glob)
	if err != nil {
		return "", &audit.FilterError{Param: "image", Value: glob, Expected: "a glob of * and ?"}
	}
	rows, err := e.db.pool.Query(ctx, "SELECT repo FROM imagegate_audit_repos WHERE repo ~ $1 LIMIT $2", re, maxGlobRepos+1)
	if err != nil {
		return "", fmt.Errorf("audit events: %w", err)
	}
	repos, err := pgx.CollectRows(rows, pgx.RowTo[string])
	switch {
	case err != nil:
		return "", fmt.Errorf("audit events: %w", err)
	case len(repos) == 0:
		return "", nil
	case len(repos) > maxGlobRepos:
		return "EXISTS (SELECT 1 FROM unnest(repos) r WHERE r ~ " + arg(re) + ")", nil
	}
	return "repos && " + arg(repos) + "::text[]", nil
}

// globRegexp is the PostgreSQL regular expression of an image glob, as
// policy.CompileGlob reads it: * any run, ? one character, [...] a class
// ([!...] negated), everything else literal, anchored at both ends.
func globRegexp(glob string) (string, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			end := strings.IndexByte(glob[i+1:], ']')
			if end < 0 {
				return "", fmt.Errorf("unterminated [")
			}
			class := glob[i+1 : i+1+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += end + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return b.String(), nil
}
