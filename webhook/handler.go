package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/admission"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/workload"
)

// Decider decides one workload; admission.Decider is the production one.
type Decider interface {
	Decide(ctx context.Context, obj *workload.Object) (*rego.Decision, error)
}

// Handler serves POST /validate.
type Handler struct {
	decider Decider
	opts    options
	slots   chan struct{}
	metrics *metrics
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a Handler deciding with d.
func NewHandler(d Decider, opts ...Option) (*Handler, error) {
	if d == nil {
		return nil, errors.New("webhook: nil decider")
	}
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Handler{decider: d, opts: o, slots: make(chan struct{}, o.maxInFlight), metrics: newMetrics(o.registerer)}, nil
}

// Audit annotation keys; the API server prefixes them with the webhook's
// name, so a webhook named imagegate.dev records imagegate.dev/decision.
const (
	AnnotationDecision   = "decision"
	AnnotationViolations = "violations"
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h.metrics.inFlight.Inc()
	defer h.metrics.inFlight.Dec()
	rv, code, msg := readReview(w, r, h.opts.maxBodyBytes, h.decodesWorkload)
	if rv == nil {
		h.fail(w, code, msg, start)
		return
	}
	rv.Request.caller = callerOf(r)
	b, tooShort := budget(r, h.opts.defaultTimeout)
	ctx, cancel := context.WithTimeout(r.Context(), b)
	defer cancel()
	resp, decision := h.answer(ctx, rv.Request, tooShort)
	h.metrics.requests.WithLabelValues(decision, rv.Request.Operation).Inc()
	h.metrics.latency.WithLabelValues(decision).Observe(time.Since(start).Seconds())
	writeAnswer(w, resp)
}

// readReview reads the AdmissionReview of a POST; without one it returns
// the HTTP status and message to answer with.
func readReview(w http.ResponseWriter, r *http.Request, maxBody int64, eager func(*request) bool) (*review, int, string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, http.StatusMethodNotAllowed, "use POST"
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return nil, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: expected application/json", r.Header.Get("Content-Type"))
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, maxBody), min(r.ContentLength, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxBody)
		}
		return nil, http.StatusBadRequest, "reading request: " + err.Error()
	}
	rv, err := decodeReview(body, eager)
	if err != nil {
		return nil, http.StatusBadRequest, err.Error()
	}
	return rv, http.StatusOK, ""
}

// budget is the time a decision may take: the API server's timeout query
// parameter (or the default), capped at MaxTimeout, less a margin for the
// answer's trip back. A timeout below MinTimeout (or one that does not
// parse) gives an error instead: waiting for a slot or a registry within it
// would only end in a misleading "too many requests in flight".
func budget(r *http.Request, def time.Duration) (time.Duration, error) {
	t := def
	if q := r.URL.Query().Get("timeout"); q != "" {
		d, err := time.ParseDuration(q)
		switch {
		case err != nil:
			return def, fmt.Errorf("timeout %q is not a duration", q)
		case d < MinTimeout:
			return def, fmt.Errorf("deadline too short: timeout=%s, a decision needs at least %v", q, MinTimeout)
		}
		t = min(d, MaxTimeout)
	}
	return t - max(t/10, 50*time.Millisecond), nil
}

// answer decides one request; it never panics and always keeps the UID.
func (h *Handler) answer(ctx context.Context, req *request, tooShort error) (resp *response, decision string) {
	defer func() {
		if p := recover(); p != nil {
			h.opts.logger.Error("panic while deciding", "uid", req.UID, "panic", fmt.Sprint(p))
			resp, decision = h.undecided(req, fmt.Errorf("internal error: %v", p)), "error"
		}
	}()
	// Exempt namespaces cost no decoding at all (an UPDATE would otherwise
	// decode both the object and the old object).
	if h.opts.exempt[req.Namespace] && req.Namespace != "" {
		return &response{UID: req.UID, Allowed: true}, "skipped"
	}
	obj, skip, err := extract(req)
	switch {
	case err != nil:
		resp := deny(req, http.StatusBadRequest, err.Error())
		h.audit(req, nil, admission.Outcome{}, resp, err)
		return resp, "denied"
	case skip != "":
		return &response{UID: req.UID, Allowed: true}, "skipped"
	case h.opts.exempt[obj.Namespace]:
		return &response{UID: req.UID, Allowed: true}, "skipped"
	}
	if tooShort != nil {
		resp := h.undecided(req, tooShort)
		h.audit(req, obj, admission.Outcome{}, resp, tooShort)
		return resp, "error"
	}
	if n := len(obj.Images); n > h.opts.maxImages {
		// Denied whatever --on-verification-error says: the workload, not
		// a registry, is at fault, and it would be so on every retry.
		err := fmt.Errorf("%s %s/%s has %d distinct images, more than the %d imagegate checks in one request", obj.Kind, obj.Namespace, obj.Name, n, h.opts.maxImages)
		resp := deny(req, http.StatusForbidden, "imagegate denied the request: "+err.Error())
		h.audit(req, obj, admission.Outcome{}, resp, err)
		return resp, "denied"
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		err := fmt.Errorf("too many requests in flight: %w", ctx.Err())
		resp := h.undecided(req, err)
		h.audit(req, obj, admission.Outcome{}, resp, err)
		return resp, "error"
	}
	out, err := h.decide(ctx, obj)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		resp := h.undecided(req, err)
		h.audit(req, obj, out, resp, err)
		return resp, "error"
	}
	d := out.Decision
	h.log(req, obj, d)
	resp = fromDecision(req, d)
	h.audit(req, obj, out, resp, nil)
	return resp, verdict(d)
}

// decodesWorkload says, of a request read up to its object, whether answer
// will decode the object (extract's conditions, and no exempt namespace), so
// that the review's reader reads it as a workload in the same pass. Fields
// the review gives after the object are still empty: a later operation or
// kind means no, a later namespace is not known to be exempt.
func (h *Handler) decodesWorkload(req *request) bool {
	return (req.Operation == "CREATE" || req.Operation == "UPDATE") &&
		(req.SubResource == "" || req.SubResource == "ephemeralcontainers") &&
		workload.IsWorkload(req.Kind.Kind) && !(req.Namespace != "" && h.opts.exempt[req.Namespace])
}

// extract finds the workload of a CREATE or UPDATE; skip says why a request
// needs no decision.
func extract(req *request) (obj *workload.Object, skip string, err error) {
	if req.Operation != "CREATE" && req.Operation != "UPDATE" {
		return nil, "operation " + req.Operation, nil
	}
	if req.SubResource != "" && req.SubResource != "ephemeralcontainers" {
		return nil, "subresource " + req.SubResource, nil
	}
	if !workload.IsWorkload(req.Kind.Kind) {
		return nil, "kind " + req.Kind.Kind, nil
	}
	if obj = req.decoded; obj == nil {
		if obj, err = workload.DecodeAs(req.Kind.Kind, req.Object); err != nil {
			return nil, "", err
		}
	}
	if req.Namespace != "" {
		obj.Namespace = req.Namespace
	}
	if req.Operation == "UPDATE" && len(req.OldObject) > 0 {
		// An update that changes no image (scaling, labels, status) needs no work.
		if old, err := workload.DecodeAs(req.Kind.Kind, req.OldObject); err == nil && sameImages(old, obj) {
			return nil, "no image changed", nil
		}
	}
	return obj, "", nil
}

func sameImages(a, b *workload.Object) bool {
	return slices.EqualFunc(a.Images, b.Images, func(x, y workload.Image) bool { return x.Ref == y.Ref })
}

// fromDecision maps a decision onto the response: the one place that does.
func fromDecision(req *request, d *rego.Decision) *response {
	resp := &response{UID: req.UID, Allowed: d.Allowed, Warnings: d.Warnings}
	ann := map[string]string{AnnotationDecision: verdict(d)}
	if len(d.Violations) > 0 {
		ann[AnnotationViolations] = strings.Join(d.Violations, "\n")
	}
	resp.AuditAnnotations = ann
	if !d.Allowed {
		resp.Result = &status{Code: http.StatusForbidden, Reason: "Forbidden", Message: "imagegate denied the request:\n" + strings.Join(d.Violations, "\n")}
	}
	return resp
}

// undecided answers a request that could not be decided (facts late, no
// policies loaded, internal error): denied, unless configured to fail open.
func (h *Handler) undecided(req *request, err error) *response {
	msg := "imagegate could not decide: " + err.Error()
	h.opts.logger.Warn("admission undecided", "uid", req.UID, "namespace", req.Namespace, "kind", req.Kind.Kind, "name", req.Name,
		"user", req.UserInfo.Username, "authenticated", req.caller.authenticated, "error", err.Error(), "failOpen", h.opts.failOpen)
	if h.opts.failOpen {
		return &response{UID: req.UID, Allowed: true, Warnings: []string{msg + " (admitted: failing open)"}, AuditAnnotations: map[string]string{AnnotationDecision: "error"}}
	}
	r := deny(req, http.StatusInternalServerError, msg)
	r.AuditAnnotations = map[string]string{AnnotationDecision: "error"}
	return r
}

func deny(req *request, code int32, msg string) *response {
	return &response{UID: req.UID, Allowed: false, Result: &status{Code: code, Message: msg}}
}

func verdict(d *rego.Decision) string {
	if d.Allowed {
		return "allowed"
	}
	return "denied"
}

func (h *Handler) log(req *request, obj *workload.Object, d *rego.Decision) {
	if d.Allowed && len(d.Warnings) == 0 {
		return
	}
	level := slog.LevelInfo
	if !d.Allowed {
		level = slog.LevelWarn
	}
	h.opts.logger.Log(context.Background(), level, "admission decision",
		"uid", req.UID, "operation", req.Operation, "kind", obj.Kind, "namespace", obj.Namespace, "name", obj.Name,
		"user", req.UserInfo.Username, "authenticated", req.caller.authenticated, "client", req.caller.client, "allowed", d.Allowed, "violations", d.Violations, "warnings", d.Warnings)
}

// fail answers a request that is not a usable AdmissionReview.
func (h *Handler) fail(w http.ResponseWriter, code int, msg string, start time.Time) {
	h.metrics.requests.WithLabelValues("error", "").Inc()
	h.metrics.latency.WithLabelValues("error").Observe(time.Since(start).Seconds())
	h.opts.logger.Warn("bad admission request", "status", code, "error", msg)
	http.Error(w, msg, code)
}

// answerBufs are the buffers answers are encoded into (an answer without
// violations is under 200 bytes).
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeAnswer answers with the AdmissionReview holding resp.
func writeAnswer(w http.ResponseWriter, resp *response) {
	bp := answerBufs.Get().(*[]byte)
	b := appendAnswer((*bp)[:0], resp)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) <= 64<<10 { // a huge answer is not kept
		*bp = b
		answerBufs.Put(bp)
	}
}
