package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/iam"
)

func (c *call) needEvents(w http.ResponseWriter) bool {
	if c.s.opts.events == nil {
		writeError(w, http.StatusNotFound, "no audit store: serve runs without --audit-store")
		return false
	}
	return true
}

// listEvents is GET /api/v1/events's query (audit.ServeQuery) for the
// signed-in user: imagegate:ListEvents, with imagegate:Namespace when the
// query names a namespace, so a policy can confine a team to its own.
func (s *Server) listEvents(w http.ResponseWriter, c *call) {
	if !c.needEvents(w) {
		return
	}
	var extra map[string][]string
	if ns := c.r.URL.Query().Get("namespace"); ns != "" {
		extra = map[string][]string{iam.KeyNamespace: {ns}}
	}
	if !c.authorizeRead(w, "ListEvents", "imagegate:event/*", extra) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	audit.ServeQuery(w, c.r, s.opts.events, s.opts.now())
}

// getEvent is one event (the drill-down), authorized with its namespace.
func (s *Server) getEvent(w http.ResponseWriter, c *call) {
	if !c.needEvents(w) {
		return
	}
	ev, err := audit.Get(s.opts.events, c.r.PathValue("id"))
	var fe *audit.FilterError
	switch {
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, audit.ErrNoEvent):
		// Asked before the namespace is known: found or not answers the same
		// to a caller who may not read events at all.
		if c.authorizeRead(w, "ListEvents", "imagegate:event/*", nil) {
			writeError(w, http.StatusNotFound, "no event "+c.r.PathValue("id"))
		}
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	var extra map[string][]string
	if ev.Namespace != "" {
		extra = map[string][]string{iam.KeyNamespace: {ev.Namespace}}
	}
	if !c.authorizeRead(w, "ListEvents", "imagegate:event/*", extra) {
		return
	}
	writeJSON(w, ev)
}

// stats is the overview: counts over time from the store's aggregates,
// and the audit pipeline's drop counters.
func (s *Server) stats(w http.ResponseWriter, c *call) {
	if !c.needEvents(w) {
		return
	}
	q, err := parseStats(c.r.URL.Query(), s.opts.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !c.authorizeRead(w, "ListEvents", "imagegate:event/*", nil) {
		return
	}
	st, err := s.opts.events.Stats(q)
	var fe *audit.FilterError
	switch {
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := struct {
		*audit.Stats
		Counters map[string]float64 `json:"counters"`
	}{st, map[string]float64{}}
	if s.opts.counters != nil {
		out.Counters = s.opts.counters()
	}
	writeJSON(w, out)
}

var statsParams = map[string]bool{"since": true, "until": true, "step": true, "by": true, "action": true, "top": true}

func parseStats(v url.Values, now time.Time) (audit.StatsQuery, error) {
	var q audit.StatsQuery
	for name, vals := range v {
		if !statsParams[name] {
			return q, fmt.Errorf("unknown parameter %s: expected since, until, step, by, action or top", name)
		}
		if len(vals) > 1 {
			return q, fmt.Errorf("parameter %s given more than once", name)
		}
	}
	// since and until read as the events' filters do (RFC 3339 or an age).
	tq, err := audit.ParseQuery(audit.QueryParams{Since: v.Get("since"), Until: v.Get("until")}, now)
	if err != nil {
		return q, err
	}
	q.Since, q.Until, q.By, q.Action = tq.Since, tq.Until, v.Get("by"), v.Get("action")
	if st := v.Get("step"); st != "" {
		if q.Step, err = time.ParseDuration(st); err != nil {
			return q, &audit.FilterError{Param: "step", Value: st, Expected: "a whole number of hours (1h, 24h)"}
		}
	}
	if t := v.Get("top"); t != "" {
		if q.Top, err = strconv.Atoi(t); err != nil {
			return q, &audit.FilterError{Param: "top", Value: t, Expected: fmt.Sprintf("a whole number from 1 to %d", audit.MaxStatsTop)}
		}
	}
	return q, q.Normalize(now)
}

// policyLists are the management API operations of the policies view and
// the list each answers in.
var policyLists = []struct{ key, action, list string }{
	{"attestors", "DescribeAttestors", "Attestors"},
	{"policies", "DescribeBinarySecurityPolicies", "PolicyList"},
	{"strategies", "ListOpaClusterStrategyNew", "Data"},
}

// policies reads attestors, BinarySecurityPolicies and OpaStrategies
// through the management API itself, as the signed-in user: the same
// handlers, the same IAM decisions, the same audit records. A list the
// user may not read says why instead.
func (s *Server) policies(w http.ResponseWriter, c *call) {
	out := map[string]any{}
	denied := map[string]string{}
	for _, l := range policyLists {
		items, err := c.apiList(l.action, l.list)
		if err != nil {
			denied[l.key] = err.Error()
			items = []any{}
		}
		out[l.key] = items
	}
	out["denied"] = denied
	writeJSON(w, out)
}

// apiList calls an RPC list operation page by page (bounded).
func (c *call) apiList(action, list string) ([]any, error) {
	items := []any{}
	for page := 1; page <= maxPolicyPages; page++ {
		form := url.Values{"Action": {action}, "CurrentPage": {strconv.Itoa(page)}, "PageSize": {"100"}}
		req := httptest.NewRequestWithContext(c.r.Context(), http.MethodPost, "/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+c.ss.token)
		req.RemoteAddr, req.TLS = c.r.RemoteAddr, c.r.TLS
		rec := httptest.NewRecorder()
		c.s.auth.ServeHTTP(rec, req)
		var body map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			return nil, fmt.Errorf("%s: %w", action, err)
		}
		if rec.Code != http.StatusOK {
			var msg string
			_ = json.Unmarshal(body["Message"], &msg)
			var code string
			_ = json.Unmarshal(body["Code"], &code)
			return nil, fmt.Errorf("%s: %s %s", action, code, msg)
		}
		var got []any
		if err := json.Unmarshal(body[list], &got); err != nil {
			return nil, fmt.Errorf("%s: no %s list in the answer", action, list)
		}
		items = append(items, got...)
		var info struct{ TotalCount int }
		_ = json.Unmarshal(body["PageInfo"], &info)
		if len(items) >= info.TotalCount || len(got) == 0 {
			break
		}
	}
	return items, nil
}

// check decides a pasted manifest with the check engine, the input
// bounded in bytes, objects and time.
func (s *Server) check(w http.ResponseWriter, c *call) {
	if s.opts.checker == nil {
		writeError(w, http.StatusNotFound, "the check box is not available on this server")
		return
	}
	if !c.authorize(w, "CheckWorkload", "imagegate:workload/*", nil) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, c.r.Body, s.opts.maxCheckBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the manifest is larger than %d bytes", s.opts.maxCheckBytes))
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, http.StatusBadRequest, "paste a manifest (YAML or JSON) to check")
		return
	}
	ctx, cancel := context.WithTimeout(c.r.Context(), DefaultCheckTimeout)
	defer cancel()
	results, err := s.opts.checker.Check(ctx, body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, map[string]any{"results": results})
}
