package pgstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/imagegate/imagegate/audit"
)

// queryTimeout bounds one page.
const queryTimeout = 10 * time.Second

// Query answers q as the bbolt store does: newest first by event id, the
// page token being the last id of the previous page. Time bounds are
// applied to the id (nanoseconds) and, for partition pruning, to the
// microsecond column at.
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
	if q.Principal != "" {
		where = append(where, "principal = "+arg(q.Principal))
	}
	if len(q.APIActions) > 0 {
		where = append(where, "api_action = ANY("+arg(q.APIActions)+")")
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
	if q.Image != "" && q.Image != "*" {
		re, err := globRegexp(q.Image)
		if err != nil {
			return nil, &audit.FilterError{Param: "image", Value: q.Image, Expected: "a glob of * and ?"}
		}
		where = append(where, "EXISTS (SELECT 1 FROM unnest(repos) r WHERE r ~ "+arg(re)+")")
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
		where = append(where, "id < "+arg(tok))
	}
	sql := "SELECT event FROM imagegate_audit_events"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY id DESC LIMIT " + arg(limit+1) // one more: is there a next page?
	ctx, cancel := context.WithTimeout(e.db.ctx, queryTimeout)
	defer cancel()
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
