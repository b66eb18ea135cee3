package audit

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// Handler is GET /api/v1/events: a bearer-authenticated query of the store
// with the filters of imagegate events (type, principal, namespace, action,
// image, since, until, limit, pageToken), answering a Page as JSON.
type Handler struct {
	Store Querier
	// Tokens checks the bearer token (a token file re-read when it
	// changes); without it, Token is the token.
	Tokens TokenChecker
	Token  string
	Now    func() time.Time
}

// TokenChecker checks a bearer token: whose it is, and whether it is
// valid now.
type TokenChecker interface {
	Check(token string) (principal string, ok bool)
}

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

var _ http.Handler = (*Handler)(nil)

var knownParams = map[string]bool{"namespace": true, "action": true, "image": true, "since": true, "until": true, "limit": true, "pageToken": true,
	"type": true, "principal": true, "cluster": true}

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
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	ServeQuery(w, r, h.Store, now())
}

// ServeQuery answers a GET of events with the filters of imagegate events
// as URL parameters (the caller has authenticated and authorized it): a
// Page as JSON, or a JSON error naming the bad parameter.
func ServeQuery(w http.ResponseWriter, r *http.Request, store Querier, now time.Time) {
	v := r.URL.Query()
	for name, vals := range v {
		switch {
		case !knownParams[name]:
			jsonError(w, http.StatusBadRequest, "unknown parameter "+name+": expected type, principal, cluster, namespace, action, image, since, until, limit or pageToken")
			return
		case len(vals) > 1 && name != "action":
			jsonError(w, http.StatusBadRequest, "parameter "+name+" given more than once")
			return
		}
	}
	q, err := ParseQuery(QueryParams{Namespace: v.Get("namespace"), Action: strings.Join(v["action"], ","), Image: v.Get("image"),
		Since: v.Get("since"), Until: v.Get("until"), Limit: v.Get("limit"), PageToken: v.Get("pageToken"),
		Type: v.Get("type"), Principal: v.Get("principal"), Cluster: v.Get("cluster")}, now)
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	page, err := store.Query(q)
	if err != nil {
		var fe *FilterError
		if errors.As(err, &fe) {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(page)
}

// WriteError answers a JSON error, as the events endpoint does.
func WriteError(w http.ResponseWriter, code int, msg string) { jsonError(w, code, msg) }

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
