package api

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// Access keys in RAM's shapes (CreateAccessKey, ListAccessKeys,
// UpdateAccessKey, DeleteAccessKey). UserPrincipalName names the principal
// (the caller when omitted); the action's resource is imagegate:user/<it>.

func userResource(principal string) string { return "imagegate:user/" + principal }

// groupLister is an Authenticator that knows a principal's groups (the
// tokens file), so a key made for a principal carries the groups its
// policies are attached through.
type groupLister interface {
	GroupsOf(principal string) []string
}

// GroupsOf is the groups the tokens file gives principal.
func (t *Tokens) GroupsOf(principal string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, p := range t.byToken {
		if p.ID == principal {
			for _, g := range p.Groups {
				if !slices.Contains(out, g) {
					out = append(out, g)
				}
			}
		}
	}
	return out
}

// GroupsOf asks every authenticator that knows groups.
func (as Authenticators) GroupsOf(principal string) []string {
	var out []string
	for _, a := range as {
		if gl, ok := a.(groupLister); ok {
			for _, g := range gl.GroupsOf(principal) {
				if !slices.Contains(out, g) {
					out = append(out, g)
				}
			}
		}
	}
	return out
}

// keyGroups are the groups a new key for principal carries: the caller's
// own when it makes a key for itself, and those the tokens file names.
func (h *Handler) keyGroups(c *call, principal string) []string {
	var out []string
	if principal == c.principal.ID && c.principal.Agency == "" {
		out = append(out, c.principal.Groups...)
	}
	if gl, ok := h.auth.(groupLister); ok {
		for _, g := range gl.GroupsOf(principal) {
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}

func (c *call) userPrincipal() string {
	if p, ok := c.param("UserPrincipalName"); ok && strings.TrimSpace(p) != "" {
		return strings.TrimSpace(p)
	}
	return c.principal.ID
}

func (h *Handler) createAccessKey(c *call) (map[string]any, error) {
	principal := c.userPrincipal()
	if err := c.authorize("CreateAccessKey", userResource(principal), nil); err != nil {
		return nil, err
	}
	var out map[string]any
	err := h.state.update(func(d *stateData) error {
		k, secret, err := h.state.newAccessKey(d, principal, h.keyGroups(c, principal), "", c.now)
		if err != nil {
			return err
		}
		out = createAccessKeyView(k, secret)
		return nil
	})
	return out, err
}

func keyView(k *AccessKey) map[string]any {
	return map[string]any{"AccessKeyId": k.ID, "Status": k.Status, "CreateDate": k.CreateDate}
}

func (h *Handler) listAccessKeys(c *call) (map[string]any, error) {
	principal := c.userPrincipal()
	if err := c.authorize("ListAccessKeys", userResource(principal), nil); err != nil {
		return nil, err
	}
	d := h.state.load().data
	list := []any{}
	for _, id := range sortedKeys(d.AccessKeys) {
		if k := d.AccessKeys[id]; k.Principal == principal {
			list = append(list, keyView(k))
		}
	}
	return map[string]any{"AccessKeys": map[string]any{"AccessKey": list}}, nil
}

// withKey authorizes op on the principal of the key named by
// UserAccessKeyId; a key of another principal than UserPrincipalName is
// not found.
func (h *Handler) withKey(c *call, op string) (string, error) {
	id, err := c.required("UserAccessKeyId")
	if err != nil {
		return "", err
	}
	principal := c.userPrincipal()
	if err := c.authorize(op, userResource(principal), nil); err != nil {
		return "", err
	}
	if k, ok := h.state.load().data.AccessKeys[id]; !ok || k.Principal != principal {
		return "", errNotFound("AccessKey", id)
	}
	return id, nil
}

func (h *Handler) updateAccessKey(c *call) (map[string]any, error) {
	status, err := c.required("Status")
	if err != nil {
		return nil, err
	}
	if status != KeyActive && status != KeyInactive {
		return nil, errParam("Status", "Status %q: expected Active or Inactive", status)
	}
	id, err := h.withKey(c, "UpdateAccessKey")
	if err != nil {
		return nil, err
	}
	return nil, h.state.update(func(d *stateData) error {
		k, ok := d.AccessKeys[id]
		if !ok {
			return errNotFound("AccessKey", id)
		}
		k.Status = status
		return nil
	})
}

func (h *Handler) deleteAccessKey(c *call) (map[string]any, error) {
	id, err := h.withKey(c, "DeleteAccessKey")
	if err != nil {
		return nil, err
	}
	return nil, h.state.update(func(d *stateData) error {
		if _, ok := d.AccessKeys[id]; !ok {
			return errNotFound("AccessKey", id)
		}
		delete(d.AccessKeys, id)
		return nil
	})
}

// Huawei Cloud's permanent access keys: /v3.0/OS-CREDENTIAL/credentials.

func (h *Handler) routeCredentials() {
	h.mux.HandleFunc("POST /v3.0/OS-CREDENTIAL/credentials", h.wrap(true, h.createCredential))
	h.mux.HandleFunc("GET /v3.0/OS-CREDENTIAL/credentials", h.wrap(true, h.listCredentials))
	h.mux.HandleFunc("GET /v3.0/OS-CREDENTIAL/credentials/{access_key}", h.wrap(true, h.showCredential))
	h.mux.HandleFunc("PUT /v3.0/OS-CREDENTIAL/credentials/{access_key}", h.wrap(true, h.updateCredential))
	h.mux.HandleFunc("DELETE /v3.0/OS-CREDENTIAL/credentials/{access_key}", h.wrap(true, h.deleteCredential))
}

func credentialView(k *AccessKey) map[string]any {
	t, _ := time.Parse(time.RFC3339, k.CreateDate)
	return map[string]any{"user_id": k.Principal, "access": k.ID, "status": strings.ToLower(k.Status),
		"create_time": t.UTC().Format("2006-01-02T15:04:05.000000Z"), "description": k.Description}
}

func (h *Handler) createCredential(c *call) (any, int, error) {
	var req struct {
		Credential *struct {
			UserID      string `json:"user_id"`
			Description string `json:"description"`
		} `json:"credential"`
	}
	if err := c.decodeBody(&req); err != nil {
		return nil, 0, err
	}
	if req.Credential == nil || req.Credential.UserID == "" {
		return nil, 0, errParam("user_id", "credential.user_id is required")
	}
	principal := req.Credential.UserID
	if err := c.authorize("CreateAccessKey", userResource(principal), nil); err != nil {
		return nil, 0, err
	}
	var out map[string]any
	err := h.state.update(func(d *stateData) error {
		k, secret, err := h.state.newAccessKey(d, principal, h.keyGroups(c, principal), req.Credential.Description, c.now)
		if err != nil {
			return err
		}
		v := credentialView(k)
		v["secret"] = secret
		out = map[string]any{"credential": v}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, http.StatusCreated, nil
}

func (h *Handler) listCredentials(c *call) (any, int, error) {
	principal := c.r.URL.Query().Get("user_id")
	if principal == "" {
		principal = c.principal.ID
	}
	if err := c.authorize("ListAccessKeys", userResource(principal), nil); err != nil {
		return nil, 0, err
	}
	d := h.state.load().data
	list := []any{}
	for _, id := range sortedKeys(d.AccessKeys) {
		if k := d.AccessKeys[id]; k.Principal == principal {
			list = append(list, credentialView(k))
		}
	}
	return map[string]any{"credentials": list}, http.StatusOK, nil
}

// withCredential authorizes op on the principal of the key in the path;
// an unknown key answers 404 only after the caller was authorized on it
// as if it were its own.
func (h *Handler) withCredential(c *call, op string) (*AccessKey, error) {
	id := c.r.PathValue("access_key")
	k, ok := h.state.load().data.AccessKeys[id]
	principal := c.principal.ID
	if ok {
		principal = k.Principal
	}
	if err := c.authorize(op, userResource(principal), nil); err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound("Credential", id)
	}
	return k, nil
}

func (h *Handler) showCredential(c *call) (any, int, error) {
	k, err := h.withCredential(c, "ListAccessKeys")
	if err != nil {
		return nil, 0, err
	}
	return map[string]any{"credential": credentialView(k)}, http.StatusOK, nil
}

func (h *Handler) updateCredential(c *call) (any, int, error) {
	var req struct {
		Credential *struct {
			Status      *string `json:"status"`
			Description *string `json:"description"`
		} `json:"credential"`
	}
	if err := c.decodeBody(&req); err != nil {
		return nil, 0, err
	}
	if req.Credential == nil {
		return nil, 0, errParam("credential", "credential is required")
	}
	status := ""
	if s := req.Credential.Status; s != nil {
		switch strings.ToLower(*s) {
		case "active":
			status = KeyActive
		case "inactive":
			status = KeyInactive
		default:
			return nil, 0, errParam("status", "status %q: expected active or inactive", *s)
		}
	}
	k, err := h.withCredential(c, "UpdateAccessKey")
	if err != nil {
		return nil, 0, err
	}
	var out *AccessKey
	err = h.state.update(func(d *stateData) error {
		cur, ok := d.AccessKeys[k.ID]
		if !ok {
			return errNotFound("Credential", k.ID)
		}
		if status != "" {
			cur.Status = status
		}
		if req.Credential.Description != nil {
			cur.Description = *req.Credential.Description
		}
		out = cur
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return map[string]any{"credential": credentialView(out)}, http.StatusOK, nil
}

func (h *Handler) deleteCredential(c *call) (any, int, error) {
	k, err := h.withCredential(c, "DeleteAccessKey")
	if err != nil {
		return nil, 0, err
	}
	err = h.state.update(func(d *stateData) error {
		delete(d.AccessKeys, k.ID)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return nil, http.StatusNoContent, nil
}
