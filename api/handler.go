package api

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/iam"
)

// Defaults, in one place.
const (
	DefaultMaxBodyBytes    = 1 << 20
	DefaultSessionDuration = 15 * time.Minute
	MaxSessionDuration     = 12 * time.Hour
	MinSessionDuration     = 15 * time.Minute
)

type options struct {
	now     func() time.Time
	logger  *slog.Logger
	audit   func(Event)
	maxBody int64
}

// Option configures a Handler.
type Option func(*options)

// WithClock sets the clock (tests move it to expire sessions).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger; every call is logged as an audit line.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithAuditor receives every call's audit event (principal, action,
// resource, decision and what decided it, request id, outcome).
func WithAuditor(fn func(Event)) Option { return func(o *options) { o.audit = fn } }

// WithMaxBodyBytes bounds request bodies.
func WithMaxBodyBytes(n int64) Option { return func(o *options) { o.maxBody = n } }

// Event is the audit record of one call. Its fields are those of
// audit.APICall, in its order, so that imagegate serve hands an Event to
// the audit recorder by conversion and the compiler notices if the two
// drift apart.
type Event struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"requestId"`
	Principal string    `json:"principal"`
	Groups    []string  `json:"groups,omitempty"`
	Agency    string    `json:"agency,omitempty"`
	Action    string    `json:"action"`
	Resource  string    `json:"resource,omitempty"`
	Allowed   bool      `json:"allowed"`
	Decision  string    `json:"decision,omitempty"`
	// PolicyID and Statement are the deciding policy and statement index
	// (Statement -1 when none decided, e.g. an administrator's default).
	PolicyID  string `json:"policyId,omitempty"`
	Statement int    `json:"statement"`
	Sid       string `json:"sid,omitempty"`
	SourceIP  string `json:"sourceIp,omitempty"`
	Status    int    `json:"status"`
	Code      string `json:"code,omitempty"`
}

// Handler serves the management API.
type Handler struct {
	store    Store
	state    *state
	auth     Authenticator
	sessions sessions
	opts     options
	mux      *http.ServeMux
	ops      map[string]rpcFunc // built once: a method value allocates
	// writeMu serializes policy object writes, so two calls cannot both
	// take the same new StrategyId or both create the same name.
	writeMu sync.Mutex
}

var _ http.Handler = (*Handler)(nil)

// NewHandler serves the API over store (policy objects) and the IAM state
// file at statePath (created with the default system control policy when
// missing), authenticating callers with auth (a tokens file, a
// TokenReviewer, or both as Authenticators).
func NewHandler(store Store, auth Authenticator, statePath string, opts ...Option) (*Handler, error) {
	o := options{now: time.Now, logger: slog.New(slog.DiscardHandler), maxBody: DefaultMaxBodyBytes}
	for _, fn := range opts {
		fn(&o)
	}
	if store == nil || auth == nil || statePath == "" {
		return nil, errors.New("api: a store, an authenticator and a state path are required")
	}
	st, err := openState(statePath, iam.Validator{KnownActions: KnownActions()}, o.now().UTC().Format(time.RFC3339))
	if err != nil {
		return nil, err
	}
	h := &Handler{store: store, state: st, auth: auth, opts: o, mux: http.NewServeMux()}
	h.ops = h.rpcOps()
	h.mux.HandleFunc("POST /{$}", h.wrap(false, h.rpc))
	h.routeREST()
	h.mux.HandleFunc("/", h.wrap(false, func(c *call) (any, int, error) {
		return nil, 0, &apiError{status: http.StatusNotFound, code: "InvalidAction.NotFound",
			msg: fmt.Sprintf("no operation at %s %s (RPC calls are POST /?Action=NAME)", c.r.Method, c.r.URL.Path)}
	}))
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// apiError is a refused call: the clouds' HTTP status, code and message.
type apiError struct {
	status int
	code   string
	msg    string
	detail any
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func errParam(name, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidParameter." + name, msg: fmt.Sprintf(format, args...)}
}

func errNotFound(kind, id string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "EntityNotExist." + kind, msg: fmt.Sprintf("%s %q does not exist", kind, id)}
}

func errExists(kind, id string) *apiError {
	return &apiError{status: http.StatusConflict, code: "EntityAlreadyExists." + kind, msg: fmt.Sprintf("%s %q already exists", kind, id)}
}

// call is one authenticated request.
type call struct {
	h         *Handler
	r         *http.Request
	id        string
	now       time.Time
	principal iam.Principal
	ev        Event
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	s := strings.ToUpper(hex.EncodeToString(b))
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// wrap authenticates, runs fn, writes its result or error in the style of
// the endpoint (RPC: RequestId/Code/Message; REST: error_code/error_msg/
// request_id) and records the audit event.
func (h *Handler) wrap(rest bool, fn func(c *call) (any, int, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, h.opts.maxBody)
		c := &call{h: h, r: r, id: newRequestID(), now: h.opts.now()}
		c.ev = Event{Time: c.now, RequestID: c.id, SourceIP: remoteIP(r), Statement: -1}
		w.Header().Set("X-Request-Id", c.id)
		var (
			body   any
			status = http.StatusOK
			err    error
		)
		c.principal, err = h.authenticate(r, c.now)
		run := func() (body any, status int, err error) {
			// A bug in one operation answers ServerError with the request
			// id instead of dropping the connection.
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic: %v", p)
				}
			}()
			return fn(c)
		}
		if err != nil {
			if !errors.Is(err, errAuthUnavailable) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="imagegate"`)
				code := "InvalidToken"
				if errors.Is(err, errExpired) {
					code = "InvalidToken.Expired"
				}
				err = &apiError{status: http.StatusUnauthorized, code: code, msg: err.Error()}
			}
		} else {
			c.ev.Principal, c.ev.Groups, c.ev.Agency = c.principal.ID, c.principal.Groups, c.principal.Agency
			body, status, err = run()
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				h.opts.logger.Error("api call failed", "requestId", c.id, "error", err.Error())
				ae = &apiError{status: http.StatusInternalServerError, code: "ServerError", msg: "ServerError"}
			}
			status = ae.status
			c.ev.Code = ae.code
			if rest {
				m := map[string]any{"error_code": ae.code, "error_msg": ae.msg, "request_id": c.id}
				if ae.detail != nil {
					// Huawei Cloud IAM's field for why access was denied; here the
					// same detail the RPC style gives, base64-encoded JSON.
					raw, _ := json.Marshal(ae.detail)
					m["encoded_authorization_message"] = base64.StdEncoding.EncodeToString(raw)
				}
				body = m
			} else {
				m := map[string]any{"RequestId": c.id, "Code": ae.code, "Message": ae.msg, "HttpStatusCode": ae.status, "Success": false}
				if ae.detail != nil {
					m["AccessDeniedDetail"] = ae.detail
				}
				body = m
			}
		} else if m, ok := body.(map[string]any); ok && !rest {
			m["RequestId"] = c.id
		}
		c.ev.Status = status
		h.emit(c.ev)
		if body == nil {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json;charset=utf8")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(body)
	}
}

func (h *Handler) emit(ev Event) {
	h.opts.logger.Info("api call", "requestId", ev.RequestID, "principal", ev.Principal, "agency", ev.Agency,
		"action", ev.Action, "resource", ev.Resource, "allowed", ev.Allowed, "decision", ev.Decision, "status", ev.Status, "code", ev.Code)
	if h.opts.audit != nil {
		h.opts.audit(ev)
	}
}

// authorize decides the call's action on resource with the request's
// condition keys plus extra ones; a refusal is NoPermission.
func (c *call) authorize(op, resource string, extra map[string][]string) error {
	ctx := requestContext(c.r, c.now)
	ctx[iam.KeyPrincipal] = []string{c.principal.ID}
	for k, v := range extra {
		if len(v) > 0 {
			ctx[k] = v
		}
	}
	action := "imagegate:" + op
	d := c.h.state.load().auth.Authorize(iam.Request{Principal: c.principal, Action: action, Resource: resource, Context: ctx, Now: c.now})
	c.ev.Action, c.ev.Resource, c.ev.Allowed, c.ev.Decision = action, resource, d.Allowed, d.String()
	c.ev.PolicyID, c.ev.Statement, c.ev.Sid = d.PolicyID, d.Statement, d.Sid
	if d.PolicyID == "" {
		c.ev.Statement = -1
	}
	if d.Allowed {
		return nil
	}
	detail := map[string]any{"AuthAction": action, "AuthResource": resource, "Reason": d.Reason}
	if d.PolicyID != "" {
		detail["PolicyId"], detail["Statement"] = d.PolicyID, d.Statement
	}
	return &apiError{status: http.StatusForbidden, code: "NoPermission", msg: "caller has no permission", detail: detail}
}

// remoteIP is the peer's address; proxies' forwarding headers are not
// trusted, so a condition on acs:SourceIp cannot be spoofed by a header.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}
