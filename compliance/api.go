package compliance

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
)

// RouteWorkloads is the workloads endpoint.
const RouteWorkloads = "GET /api/v1/workloads"

// Page limits of GET /api/v1/workloads.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Handler is GET /api/v1/workloads: the current state of the running
// workloads, filtered by namespace, image (a glob over the repository, as
// the events API), action (or violating) and strategy (id or name),
// bearer-authenticated with the events API's tokens.
type Handler struct {
	Monitor *Monitor
	Tokens  audit.TokenChecker
	Token   string
}

var _ http.Handler = (*Handler)(nil)

// Page is one page of workloads.
type Page struct {
	Workloads     []*State `json:"workloads"`
	NextPageToken string   `json:"nextPageToken,omitempty"`
}

var params = map[string]bool{"namespace": true, "image": true, "action": true, "strategy": true, "limit": true, "pageToken": true}

func (h *Handler) authorized(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	if h.Tokens != nil {
		_, ok := h.Tokens.Check(token)
		return ok
	}
	return h.Token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(h.Token)) == 1
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		jsonError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="imagegate"`)
		jsonError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	v := r.URL.Query()
	for name, vals := range v {
		switch {
		case !params[name]:
			jsonError(w, http.StatusBadRequest, "unknown parameter "+name+": expected namespace, image, action, strategy, limit or pageToken")
			return
		case len(vals) > 1:
			jsonError(w, http.StatusBadRequest, "parameter "+name+" given more than once")
			return
		}
	}
	f, err := parseFilter(v.Get("namespace"), v.Get("image"), v.Get("action"), v.Get("strategy"), v.Get("limit"), v.Get("pageToken"))
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	page := h.query(f)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(page)
}

type filter struct {
	namespace  string
	image      *policy.Glob
	actions    []string
	strategy   string
	limit      int
	pageToken  string
	strategyID int64
}

func parseFilter(ns, image, action, strategy, limit, pageToken string) (filter, error) {
	f := filter{namespace: ns, strategy: strategy, limit: DefaultLimit, pageToken: pageToken}
	if len(ns) > 253 || len(image) > 1024 || len(strategy) > 253 || len(pageToken) > 1024 {
		return f, fmt.Errorf("a parameter is too long")
	}
	if image != "" && image != "*" {
		g, err := policy.CompileGlob(image)
		if err != nil {
			return f, fmt.Errorf("image %q: expected a glob of * and ? (%v)", image, err)
		}
		f.image = g
	}
	for _, a := range strings.Split(action, ",") {
		a = strings.ToLower(strings.TrimSpace(a))
		switch {
		case a == "":
		case a == "violating":
			f.actions = append(f.actions, ActionBlock, ActionUnsigned, ActionAlert, ActionError)
		case slices.Contains(Actions, a):
			f.actions = append(f.actions, a)
		default:
			return f, fmt.Errorf("action %q: expected violating or one of %s", a, strings.Join(Actions, ", "))
		}
	}
	if strategy != "" {
		if id, err := strconv.ParseInt(strategy, 10, 64); err == nil {
			f.strategyID = id
		}
	}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > MaxLimit {
			return f, fmt.Errorf("limit %q: expected a whole number from 1 to %d", limit, MaxLimit)
		}
		f.limit = n
	}
	return f, nil
}

func (f filter) match(s *State) bool {
	if f.namespace != "" && s.Namespace != f.namespace {
		return false
	}
	if len(f.actions) > 0 && !slices.Contains(f.actions, s.Action) {
		return false
	}
	if f.strategy != "" && !slices.ContainsFunc(s.Images, func(img Image) bool {
		return slices.ContainsFunc(img.Strategies, func(h audit.StrategyHit) bool {
			return (f.strategyID != 0 && h.ID == f.strategyID) || h.Name == f.strategy
		})
	}) {
		return false
	}
	if f.image != nil && !slices.ContainsFunc(s.Images, func(img Image) bool {
		p := workload.ParseImage(img.Image)
		return f.image.Match(repositoryOf(img.Image)) || (p.Err == nil && f.image.Match(p.Repository))
	}) {
		return false
	}
	return true
}

// repositoryOf is a reference as written without its tag or digest.
func repositoryOf(ref string) string {
	if at := strings.IndexByte(ref, '@'); at >= 0 {
		ref = ref[:at]
	}
	if colon := strings.LastIndexByte(ref, ':'); colon > strings.LastIndexByte(ref, '/') {
		ref = ref[:colon]
	}
	return ref
}

// query pages through the states in key order; the page token is the last
// key of the previous page.
func (h *Handler) query(f filter) *Page {
	var states []*State
	if f.namespace != "" {
		states = h.Monitor.InNamespace(f.namespace)
	} else {
		states = h.Monitor.States()
	}
	page := &Page{Workloads: []*State{}}
	for _, s := range states {
		if f.pageToken != "" && s.key.String() <= f.pageToken {
			continue
		}
		if !f.match(s) {
			continue
		}
		if len(page.Workloads) == f.limit {
			page.NextPageToken = page.Workloads[len(page.Workloads)-1].key.String()
			break
		}
		page.Workloads = append(page.Workloads, s)
	}
	return page
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
