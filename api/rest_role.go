package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/imagegate/imagegate/iam"
)

func roleResource(id string) string { return "imagegate:role/" + id }

// roleBody is a Huawei Cloud IAM custom policy request: {"role": {...}}.
type roleBody struct {
	Role *struct {
		DisplayName   string          `json:"display_name"`
		Type          string          `json:"type"`
		Description   string          `json:"description"`
		DescriptionCN *string         `json:"description_cn"`
		Policy        json.RawMessage `json:"policy"`
	} `json:"role"`
}

// check validates the body and returns the policy document as compact text.
func (b *roleBody) check(v iam.Validator) (string, error) {
	if b.Role == nil {
		return "", errParam("role", "role is required")
	}
	r := b.Role
	if n := utf8.RuneCountInString(r.DisplayName); n < 1 || n > 128 {
		return "", errParam("display_name", "display_name is required (1 to 128 characters)")
	}
	if r.Type != "AX" && r.Type != "XA" {
		return "", errParam("type", "type %q: expected AX (global) or XA (project)", r.Type)
	}
	if n := utf8.RuneCountInString(r.Description); n < 1 || n > 1000 {
		return "", errParam("description", "description is required (1 to 1000 characters)")
	}
	if len(r.Policy) == 0 {
		return "", errParam("policy", "policy is required")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, r.Policy); err != nil {
		return "", errParam("policy", "policy: %v", err)
	}
	if _, err := v.Parse("policy", compact.String(), iam.Permission); err != nil {
		return "", docErr(err)
	}
	return compact.String(), nil
}

func (h *Handler) roleView(c *call, r *Role) map[string]any {
	m := map[string]any{
		"catalog": "CUSTOMED", "display_name": r.DisplayName, "description": r.Description,
		"links":  map[string]any{"self": fmt.Sprintf("https://%s/v3.0/OS-ROLE/roles/%s", c.r.Host, r.ID)},
		"policy": r.Policy, "domain_id": "imagegate", "type": r.Type, "id": r.ID, "name": r.Name,
		"updated_time": r.UpdatedTime, "created_time": r.CreatedTime,
	}
	if r.DescriptionCN != "" {
		m["description_cn"] = r.DescriptionCN
	}
	return m
}

func (h *Handler) createRole(c *call) (any, int, error) {
	var b roleBody
	if err := c.decodeBody(&b); err != nil {
		return nil, 0, err
	}
	doc, err := b.check(h.state.validator)
	if err != nil {
		return nil, 0, err
	}
	id := randomID("", 32)
	if err := c.authorize("CreateRole", roleResource(id), nil); err != nil {
		return nil, 0, err
	}
	ms := strconv.FormatInt(c.now.UnixMilli(), 10)
	r := &Role{ID: id, DisplayName: b.Role.DisplayName, Type: b.Role.Type, Description: b.Role.Description,
		Policy: json.RawMessage(doc), CreatedTime: ms, UpdatedTime: ms}
	if b.Role.DescriptionCN != nil {
		r.DescriptionCN = *b.Role.DescriptionCN
	}
	err = h.state.update(func(d *stateData) error {
		r.Name = fmt.Sprintf("custom_imagegate_%d", len(d.Roles)+1)
		for _, o := range d.Roles {
			if o.DisplayName == r.DisplayName {
				return errExists("Role", r.DisplayName)
			}
			if o.Name == r.Name {
				r.Name += "_" + id[:6]
			}
		}
		d.Roles[id] = r
		return nil
	})
	if err != nil {
		return nil, 0, docErr(err)
	}
	return map[string]any{"role": h.roleView(c, r)}, http.StatusCreated, nil
}

func (h *Handler) listRoles(c *call) (any, int, error) {
	if err := c.authorize("ListRoles", roleResource("*"), nil); err != nil {
		return nil, 0, err
	}
	d := h.state.load().data
	roles := []any{}
	for _, id := range sortedKeys(d.Roles) {
		v := h.roleView(c, d.Roles[id])
		v["attachments"] = append([]string{}, d.Roles[id].Targets...)
		roles = append(roles, v)
	}
	return map[string]any{"roles": roles}, http.StatusOK, nil
}

// withRole authorizes op on the role in the path and returns it.
func (h *Handler) withRole(c *call, op string) (*Role, error) {
	id := c.r.PathValue("role_id")
	if err := c.authorize(op, roleResource(id), nil); err != nil {
		return nil, err
	}
	r, ok := h.state.load().data.Roles[id]
	if !ok {
		return nil, errNotFound("Role", id)
	}
	return r, nil
}

func (h *Handler) getRole(c *call) (any, int, error) {
	r, err := h.withRole(c, "GetRole")
	if err != nil {
		return nil, 0, err
	}
	return map[string]any{"role": h.roleView(c, r)}, http.StatusOK, nil
}

// updateRole is Huawei Cloud IAM's custom policy update: PATCH /v3.0/OS-ROLE/roles/{role_id}.
func (h *Handler) updateRole(c *call) (any, int, error) {
	var b roleBody
	if err := c.decodeBody(&b); err != nil {
		return nil, 0, err
	}
	doc, err := b.check(h.state.validator)
	if err != nil {
		return nil, 0, err
	}
	r, err := h.withRole(c, "UpdateRole")
	if err != nil {
		return nil, 0, err
	}
	var out *Role
	err = h.state.update(func(d *stateData) error {
		cur, ok := d.Roles[r.ID]
		if !ok {
			return errNotFound("Role", r.ID)
		}
		for _, o := range d.Roles {
			if o.ID != r.ID && o.DisplayName == b.Role.DisplayName {
				return errExists("Role", b.Role.DisplayName)
			}
		}
		cur.DisplayName, cur.Type, cur.Description, cur.Policy = b.Role.DisplayName, b.Role.Type, b.Role.Description, json.RawMessage(doc)
		if b.Role.DescriptionCN != nil {
			cur.DescriptionCN = *b.Role.DescriptionCN
		}
		cur.UpdatedTime = strconv.FormatInt(c.now.UnixMilli(), 10)
		out = cur
		return nil
	})
	if err != nil {
		return nil, 0, docErr(err)
	}
	return map[string]any{"role": h.roleView(c, out)}, http.StatusOK, nil
}

func (h *Handler) deleteRole(c *call) (any, int, error) {
	r, err := h.withRole(c, "DeleteRole")
	if err != nil {
		return nil, 0, err
	}
	err = h.state.update(func(d *stateData) error {
		if cur := d.Roles[r.ID]; cur != nil && len(cur.Targets) > 0 {
			return &apiError{status: http.StatusConflict, code: "DeleteConflict.Role.Attachment",
				msg: fmt.Sprintf("role %s is attached to %v; detach it first", r.ID, cur.Targets)}
		}
		delete(d.Roles, r.ID)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return nil, http.StatusNoContent, nil
}

// roleTarget turns /{users|groups|agencies}/{target} into an attachment
// target.
func (c *call) roleTarget() (string, error) {
	kind, id := c.r.PathValue("kind"), c.r.PathValue("target")
	prefix, ok := map[string]string{"users": "user:", "groups": "group:", "agencies": "agency:"}[kind]
	if !ok || id == "" {
		return "", &apiError{status: http.StatusNotFound, code: "InvalidAction.NotFound",
			msg: fmt.Sprintf("no such path: roles attach to users, groups or agencies, not %q", kind)}
	}
	return prefix + id, nil
}

func (h *Handler) attachRole(c *call) (any, int, error) {
	return h.changeRoleTarget(c, "AttachRole", true)
}

func (h *Handler) detachRole(c *call) (any, int, error) {
	return h.changeRoleTarget(c, "DetachRole", false)
}

func (h *Handler) changeRoleTarget(c *call, op string, attach bool) (any, int, error) {
	target, err := c.roleTarget()
	if err != nil {
		return nil, 0, err
	}
	r, err := h.withRole(c, op)
	if err != nil {
		return nil, 0, err
	}
	err = h.state.update(func(d *stateData) error {
		cur, ok := d.Roles[r.ID]
		if !ok {
			return errNotFound("Role", r.ID)
		}
		if err := checkTarget("target", target, d); err != nil {
			return err
		}
		has := slices.Contains(cur.Targets, target)
		switch {
		case attach && has:
			return &apiError{status: http.StatusConflict, code: "EntityAlreadyExists.Attachment", msg: fmt.Sprintf("role %s is already attached to %s", r.ID, target)}
		case attach:
			cur.Targets = append(cur.Targets, target)
		case !has:
			return &apiError{status: http.StatusNotFound, code: "EntityNotExist.Attachment", msg: fmt.Sprintf("role %s is not attached to %s", r.ID, target)}
		default:
			cur.Targets = without(cur.Targets, target)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return nil, http.StatusNoContent, nil
}
