package audit

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imagegate/imagegate/policy"
)

// Query selects events, newest first. Every set field narrows the result:
// an event matches when it is of ClusterID, in Namespace, has any of Actions, has any
// image whose repository matches Image, and happened in [Since, Until].
type Query struct {
	// Type is admission, api or empty (both). Namespace, Actions and Image
	// select admissions; Principal and APIActions select API calls.
	Type string
	// Principal and APIActions (imagegate:CreateOpaStrategyNew, any of)
	// narrow API calls; either implies Type api.
	Principal  string
	APIActions []string

	// ClusterID selects the events of one cluster (admissions and API
	// calls), for a store that several clusters share.
	ClusterID string
	Namespace string
	Actions   []string
	// Image is a glob (* and ?) over the repository as written in the
	// manifest (registry.example.com/team/app, nginx) or its canonical form
	// (index.docker.io/library/nginx); tags and digests are not part of it.
	Image string
	Since time.Time // inclusive; zero: no bound
	Until time.Time // inclusive; zero: no bound
	// Limit bounds one page (default DefaultLimit, at most MaxLimit).
	Limit int
	// PageToken continues after the last event of a previous page.
	PageToken string
}

// Page limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Page is one page of a query's events; NextPageToken is empty on the last.
type Page struct {
	Events        []*Event `json:"events"`
	NextPageToken string   `json:"nextPageToken,omitempty"`
}

// FilterError is a bad query parameter: which, what it was, what was expected.
type FilterError struct {
	Param, Value, Expected string
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("%s %q: expected %s", e.Param, e.Value, e.Expected)
}

// QueryParams are a query as text, from flags or URL parameters; ParseQuery
// checks them all and names the first bad one.
type QueryParams struct {
	Namespace, Action, Image, Since, Until, Limit, PageToken string
	Cluster                                                  string
	// Type is admission or api; Principal selects API calls. With type api
	// (or a Principal, or only imagegate: actions) Action names API actions.
	Type, Principal string
}

// ParseQuery turns text parameters into a Query. Times are RFC 3339 or an
// age before now (24h, 7d, 90m); actions are comma-separated.
func ParseQuery(p QueryParams, now time.Time) (Query, error) {
	q := Query{Namespace: strings.TrimSpace(p.Namespace), Image: strings.TrimSpace(p.Image), PageToken: strings.TrimSpace(p.PageToken)}
	if len(q.Namespace) > 253 {
		return q, &FilterError{"namespace", q.Namespace, "a namespace name (at most 253 characters)"}
	}
	if q.ClusterID = strings.TrimSpace(p.Cluster); len(q.ClusterID) > 253 {
		return q, &FilterError{"cluster", q.ClusterID, "a cluster id (at most 253 characters)"}
	}
	q.Type, q.Principal = strings.ToLower(strings.TrimSpace(p.Type)), strings.TrimSpace(p.Principal)
	if q.Type != "" && !slices.Contains(Types, q.Type) {
		return q, &FilterError{"type", q.Type, "one of " + strings.Join(Types, ", ")}
	}
	if q.Type == "" && (q.Principal != "" || onlyAPIActions(p.Action)) {
		q.Type = TypeAPI
	}
	for _, a := range strings.Split(p.Action, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if q.Type == TypeAPI {
			if !slices.Contains(q.APIActions, a) {
				q.APIActions = append(q.APIActions, a)
			}
			continue
		}
		a = strings.ToLower(a)
		if !slices.Contains(Actions, a) {
			return q, &FilterError{"action", a, "one of " + strings.Join(Actions, ", ")}
		}
		if !slices.Contains(q.Actions, a) {
			q.Actions = append(q.Actions, a)
		}
	}
	var err error
	if q.Since, err = parseTime("since", p.Since, now); err != nil {
		return q, err
	}
	if q.Until, err = parseTime("until", p.Until, now); err != nil {
		return q, err
	}
	if s := strings.TrimSpace(p.Limit); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return q, &FilterError{"limit", s, fmt.Sprintf("a whole number from 1 to %d", MaxLimit)}
		}
		q.Limit = n
	}
	return q, q.Validate()
}

// onlyAPIActions reports whether a comma-separated action list names only
// management API actions (imagegate:…), which no admission has.
func onlyAPIActions(list string) bool {
	n := 0
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if !strings.HasPrefix(a, "imagegate:") {
			return false
		}
		n++
	}
	return n > 0
}

// Validate checks a Query built in code (ParseQuery calls it).
func (q *Query) Validate() error {
	if q.Type == "" && (q.Principal != "" || len(q.APIActions) > 0) {
		q.Type = TypeAPI
	}
	switch {
	case q.Type != "" && !slices.Contains(Types, q.Type):
		return &FilterError{"type", q.Type, "one of " + strings.Join(Types, ", ")}
	case q.Type == TypeAPI && q.Namespace != "":
		return &FilterError{"namespace", q.Namespace, "no namespace with type api (namespaces select admissions)"}
	case q.Type == TypeAPI && q.Image != "":
		return &FilterError{"image", q.Image, "no image with type api (images select admissions)"}
	case q.Type == TypeAPI && len(q.Actions) > 0:
		return &FilterError{"action", strings.Join(q.Actions, ","), "an API action such as imagegate:CreateOpaStrategyNew with type api"}
	case q.Type == TypeAdmission && len(q.APIActions) > 0:
		return &FilterError{"action", strings.Join(q.APIActions, ","), "an admission action (" + strings.Join(Actions, ", ") + ") with type admission"}
	case q.Type == TypeRuntime && (q.Principal != "" || len(q.APIActions) > 0):
		return &FilterError{"type", q.Type, "api with a principal or an API action (they select API calls)"}
	case q.Type == TypeAdmission && q.Principal != "":
		return &FilterError{"principal", q.Principal, "no principal with type admission (principals select API calls)"}
	}
	for _, a := range q.APIActions {
		if !strings.HasPrefix(a, "imagegate:") || len(a) == len("imagegate:") {
			return &FilterError{"action", a, "an API action such as imagegate:CreateOpaStrategyNew"}
		}
	}
	if q.Image != "" {
		if _, err := policy.CompileGlob(q.Image); err != nil {
			return &FilterError{"image", q.Image, "a glob of * and ? (" + err.Error() + ")"}
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Since.After(q.Until) {
		return &FilterError{"since", q.Since.Format(time.RFC3339), "a time not after until (" + q.Until.Format(time.RFC3339) + ")"}
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return &FilterError{"limit", strconv.Itoa(q.Limit), fmt.Sprintf("a whole number from 1 to %d", MaxLimit)}
	}
	if q.PageToken != "" {
		if b, err := hex.DecodeString(q.PageToken); err != nil || len(b) != 16 {
			return &FilterError{"pageToken", q.PageToken, "the nextPageToken of a previous page"}
		}
	}
	for _, a := range q.Actions {
		if !slices.Contains(Actions, a) {
			return &FilterError{"action", a, "one of " + strings.Join(Actions, ", ")}
		}
	}
	return nil
}

// parseTime reads RFC 3339 or an age: a Go duration or a number of days (7d).
func parseTime(param, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	bad := &FilterError{param, s, "an RFC 3339 time (2026-11-23T09:00:00Z) or a positive age (90m, 24h, 7d)"}
	var age time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 36500 {
			return time.Time{}, bad
		}
		age = time.Duration(n) * 24 * time.Hour
	} else {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return time.Time{}, bad
		}
		age = d
	}
	return now.Add(-age), nil
}
