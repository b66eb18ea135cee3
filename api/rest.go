package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imagegate/imagegate/iam"
)

func (h *Handler) routeREST() {
	h.mux.HandleFunc("POST /v5/agencies", h.wrap(true, h.createAgency))
	h.mux.HandleFunc("GET /v5/agencies/{agency_id}", h.wrap(true, h.getAgency))
	h.mux.HandleFunc("DELETE /v5/agencies/{agency_id}", h.wrap(true, h.deleteAgency))
	h.mux.HandleFunc("PUT /v5/agencies/{agency_id}/trust-policy", h.wrap(true, h.putTrustPolicy))
	h.mux.HandleFunc("POST /v5/agencies/{agency_id}/assume", h.wrap(true, h.assumeAgency))

	h.mux.HandleFunc("POST /v3.0/OS-ROLE/roles", h.wrap(true, h.createRole))
	h.mux.HandleFunc("GET /v3.0/OS-ROLE/roles", h.wrap(true, h.listRoles))
	h.mux.HandleFunc("GET /v3.0/OS-ROLE/roles/{role_id}", h.wrap(true, h.getRole))
	h.mux.HandleFunc("PATCH /v3.0/OS-ROLE/roles/{role_id}", h.wrap(true, h.updateRole))
	h.mux.HandleFunc("DELETE /v3.0/OS-ROLE/roles/{role_id}", h.wrap(true, h.deleteRole))
	h.mux.HandleFunc("PUT /v3.0/OS-ROLE/{kind}/{target}/roles/{role_id}", h.wrap(true, h.attachRole))
	h.mux.HandleFunc("DELETE /v3.0/OS-ROLE/{kind}/{target}/roles/{role_id}", h.wrap(true, h.detachRole))
}

// decodeBody decodes a JSON body strictly into v.
func (c *call) decodeBody(v any) error {
	raw, err := io.ReadAll(c.r.Body)
	if err != nil {
		return errParam("body", "reading the body: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &apiError{status: http.StatusBadRequest, code: "InvalidParameter.body.Malformed", msg: "the JSON body does not parse: " + jsonErr(err)}
	}
	return nil
}

var (
	agencyIDRE   = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	agencyNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

func agencyResource(id string) string { return "imagegate:agency/" + id }

func agencyView(a *Agency) map[string]any {
	return map[string]any{"agency": map[string]any{
		"agency_id": a.ID, "agency_name": a.Name, "description": a.Description, "trust_policy": a.TrustPolicy,
		"max_session_duration": a.MaxSessionDuration, "urn": "iam::imagegate:agency:" + a.Name, "created_at": a.CreatedAt,
	}}
}

func (c *call) agencyID() (string, error) {
	id := c.r.PathValue("agency_id")
	if !agencyIDRE.MatchString(id) {
		return "", errParam("agency_id", "agency_id %q: 1 to 64 letters, digits and hyphens", id)
	}
	return id, nil
}

func (h *Handler) createAgency(c *call) (any, int, error) {
	var req struct {
		AgencyName         string `json:"agency_name"`
		TrustPolicy        string `json:"trust_policy"`
		Description        string `json:"description"`
		MaxSessionDuration int    `json:"max_session_duration"`
	}
	if err := c.decodeBody(&req); err != nil {
		return nil, 0, err
	}
	if !agencyNameRE.MatchString(req.AgencyName) {
		return nil, 0, errParam("agency_name", "agency_name %q: 1 to 64 letters, digits, '_', '.' and '-'", req.AgencyName)
	}
	if utf8.RuneCountInString(req.Description) > 1000 {
		return nil, 0, errParam("description", "description: at most 1000 characters")
	}
	if req.MaxSessionDuration == 0 {
		req.MaxSessionDuration = 3600
	}
	if longest := int(MaxSessionDuration / time.Second); req.MaxSessionDuration < 3600 || req.MaxSessionDuration > longest {
		return nil, 0, errParam("max_session_duration", "max_session_duration %d: 3600 to %d seconds", req.MaxSessionDuration, longest)
	}
	if _, err := h.state.validator.Parse("trust_policy", req.TrustPolicy, iam.Trust); err != nil {
		return nil, 0, docErr(err)
	}
	id := strings.ToLower(randomID("", 32))
	if err := c.authorize("CreateAgency", agencyResource(id), nil); err != nil {
		return nil, 0, err
	}
	a := &Agency{ID: id, Name: req.AgencyName, Description: req.Description, TrustPolicy: req.TrustPolicy,
		MaxSessionDuration: req.MaxSessionDuration, CreatedAt: c.now.UTC().Format(time.RFC3339)}
	err := h.state.update(func(d *stateData) error {
		for _, o := range d.Agencies {
			if o.Name == a.Name {
				return errExists("Agency", a.Name)
			}
		}
		d.Agencies[id] = a
		return nil
	})
	if err != nil {
		return nil, 0, docErr(err)
	}
	return agencyView(a), http.StatusCreated, nil
}

// withAgency authorizes op on the agency in the path and returns it.
func (h *Handler) withAgency(c *call, op string) (*Agency, error) {
	id, err := c.agencyID()
	if err != nil {
		return nil, err
	}
	if err := c.authorize(op, agencyResource(id), nil); err != nil {
		return nil, err
	}
	a, ok := h.state.load().data.Agencies[id]
	if !ok {
		return nil, errNotFound("Agency", id)
	}
	return a, nil
}

func (h *Handler) getAgency(c *call) (any, int, error) {
	a, err := h.withAgency(c, "GetAgency")
	if err != nil {
		return nil, 0, err
	}
	return agencyView(a), http.StatusOK, nil
}

func (h *Handler) deleteAgency(c *call) (any, int, error) {
	a, err := h.withAgency(c, "DeleteAgency")
	if err != nil {
		return nil, 0, err
	}
	target := "agency:" + a.ID
	err = h.state.update(func(d *stateData) error {
		delete(d.Agencies, a.ID)
		// Its attachments go with it; sessions end because authentication
		// checks the agency still exists.
		for _, cp := range d.ControlPolicies {
			cp.Targets = without(cp.Targets, target)
		}
		for _, r := range d.Roles {
			r.Targets = without(r.Targets, target)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return nil, http.StatusNoContent, nil
}

func without(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// putTrustPolicy is Huawei Cloud IAM's agency trust policy update: PUT /v5/agencies/{agency_id}/trust-policy.
func (h *Handler) putTrustPolicy(c *call) (any, int, error) {
	var req struct {
		TrustPolicy *string `json:"trust_policy"`
	}
	if err := c.decodeBody(&req); err != nil {
		return nil, 0, err
	}
	if req.TrustPolicy == nil {
		return nil, 0, errParam("trust_policy", "trust_policy is required")
	}
	if _, err := h.state.validator.Parse("trust_policy", *req.TrustPolicy, iam.Trust); err != nil {
		return nil, 0, docErr(err)
	}
	a, err := h.withAgency(c, "UpdateTrustPolicy")
	if err != nil {
		return nil, 0, err
	}
	err = h.state.update(func(d *stateData) error {
		cur, ok := d.Agencies[a.ID]
		if !ok {
			return errNotFound("Agency", a.ID)
		}
		cur.TrustPolicy = *req.TrustPolicy
		return nil
	})
	if err != nil {
		return nil, 0, docErr(err)
	}
	return nil, http.StatusOK, nil
}

// requestContext is what conditions see of the request itself (trust
// policies see only this; authorize adds the principal and the operation's keys).
func requestContext(r *http.Request, now time.Time) map[string][]string {
	ctx := map[string][]string{iam.KeyCurrentTime: {now.UTC().Format(time.RFC3339)}, iam.KeySecureTransport: {fmt.Sprint(r.TLS != nil)}}
	if host := remoteIP(r); host != "" {
		ctx[iam.KeySourceIP] = []string{host}
	}
	return ctx
}

// assumeAgency issues a short-lived token acting as the agency, when the
// agency's trust policy allows the caller sts:agencies:assume.
func (h *Handler) assumeAgency(c *call) (any, int, error) {
	var req struct {
		DurationSeconds int    `json:"duration_seconds"`
		SessionName     string `json:"session_name"`
	}
	if c.r.ContentLength != 0 {
		if err := c.decodeBody(&req); err != nil {
			return nil, 0, err
		}
	}
	id, err := c.agencyID()
	if err != nil {
		return nil, 0, err
	}
	c.ev.Action, c.ev.Resource = iam.TrustAction, agencyResource(id)
	cur := h.state.load()
	a, ok := cur.data.Agencies[id]
	denied := &apiError{status: http.StatusForbidden, code: "NoPermission", msg: "caller has no permission"}
	if !ok {
		// Unknown and untrusted look alike to the caller.
		return nil, 0, denied
	}
	if c.principal.Agency != "" {
		denied.detail = map[string]any{"Reason": "an assumed agency cannot assume another"}
		return nil, 0, denied
	}
	// Trust first: only a trusted caller learns the agency's limits.
	d := cur.trusts[id].Trusts(c.principal, iam.TrustAction, requestContext(c.r, c.now))
	c.ev.Allowed, c.ev.Decision = d.Allowed, "trust policy: "+d.String()
	if !d.Allowed {
		denied.detail = map[string]any{"AuthAction": iam.TrustAction, "AuthResource": agencyResource(id), "Reason": d.Reason}
		return nil, 0, denied
	}
	if req.DurationSeconds == 0 {
		req.DurationSeconds = int(DefaultSessionDuration / time.Second)
	}
	if req.DurationSeconds < int(MinSessionDuration/time.Second) || req.DurationSeconds > a.MaxSessionDuration {
		return nil, 0, errParam("duration_seconds", "duration_seconds %d: %d to %d (the agency's max_session_duration)",
			req.DurationSeconds, int(MinSessionDuration/time.Second), a.MaxSessionDuration)
	}
	expires := c.now.Add(time.Duration(req.DurationSeconds) * time.Second)
	tok := h.sessions.issue(c.principal, iam.Principal{ID: c.principal.ID, Agency: id, ExpiresAt: expires}, c.now)
	return map[string]any{
		"credentials":    map[string]any{"security_token": tok, "expires_at": expires.UTC().Format(time.RFC3339)},
		"assumed_agency": map[string]any{"agency_id": id, "agency_name": a.Name, "session_name": req.SessionName, "principal": c.principal.ID},
	}, http.StatusCreated, nil
}
