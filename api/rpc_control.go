package api

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imagegate/imagegate/iam"
)

// Resource Directory's rules for control policy names and descriptions.
var (
	policyNameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)
	descriptionRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
)

func controlResource(id string) string { return "imagegate:controlpolicy/" + id }

func checkText(param, v string, maxLen int, re *regexp.Regexp, rule string) error {
	if n := utf8.RuneCountInString(v); n < 1 || n > maxLen {
		return &apiError{status: http.StatusBadRequest, code: "InvalidParameter." + param + ".Length",
			msg: fmt.Sprintf("%s must be 1 to %d characters (got %d)", param, maxLen, n)}
	}
	if !re.MatchString(v) {
		return &apiError{status: http.StatusBadRequest, code: "InvalidParameter." + param + ".InvalidChars",
			msg: fmt.Sprintf("%s %q: %s", param, v, rule)}
	}
	return nil
}

func checkPolicyName(param, v string) error {
	return checkText(param, v, 128, policyNameRE, "letters, digits and hyphens, starting with a letter")
}

func checkDescription(param, v string) error {
	return checkText(param, v, 1024, descriptionRE, "letters, digits, underscores and hyphens, starting with a letter")
}

// docErr turns a refused document into the cloud's error code.
func docErr(err error) error {
	var e *iam.Error
	if errors.As(err, &e) {
		return &apiError{status: http.StatusBadRequest, code: e.Code, msg: e.Error()}
	}
	return err
}

func randomID(prefix string, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

func controlView(cp *ControlPolicy) map[string]any {
	return map[string]any{
		"UpdateDate": cp.UpdateDate, "Description": cp.Description, "EffectScope": cp.EffectScope,
		"AttachmentCount": strconv.Itoa(len(cp.Targets)), "PolicyName": cp.PolicyName, "PolicyId": cp.PolicyID,
		"CreateDate": cp.CreateDate, "PolicyType": cp.PolicyType,
	}
}

func (h *Handler) createControl(c *call) (map[string]any, error) {
	name, err := c.required("PolicyName")
	if err != nil {
		return nil, err
	}
	if err := checkPolicyName("PolicyName", name); err != nil {
		return nil, err
	}
	desc, hasDesc := c.param("Description")
	if hasDesc {
		if err := checkDescription("Description", desc); err != nil {
			return nil, err
		}
	}
	scope, _ := c.param("EffectScope")
	if scope == "" {
		scope = string(iam.ScopeRAM)
	}
	if scope != string(iam.ScopeAll) && scope != string(iam.ScopeRAM) {
		return nil, errParam("EffectScope", "EffectScope %q: expected All or RAM", scope)
	}
	doc, err := c.required("PolicyDocument")
	if err != nil {
		return nil, err
	}
	if _, err := h.state.validator.Parse("PolicyDocument", doc, iam.Permission); err != nil {
		return nil, docErr(err)
	}
	id := randomID("cp-", 16)
	if err := c.authorize("CreateControlPolicy", controlResource(id), nil); err != nil {
		return nil, err
	}
	now := c.now.UTC().Format("2006-01-02T15:04:05Z")
	cp := &ControlPolicy{PolicyID: id, PolicyName: name, Description: desc, EffectScope: scope, PolicyType: "Custom",
		PolicyDocument: doc, CreateDate: now, UpdateDate: now}
	err = h.state.update(func(d *stateData) error {
		for _, o := range d.ControlPolicies {
			if o.PolicyName == name {
				return errExists("ControlPolicy", name)
			}
		}
		d.ControlPolicies[id] = cp
		return nil
	})
	if err != nil {
		return nil, docErr(err)
	}
	return map[string]any{"ControlPolicy": controlView(cp)}, nil
}

// withControl authorizes op on the policy named by PolicyId, then runs fn
// on a copy of the state; fn's refusal changes nothing.
func (h *Handler) withControl(c *call, op string, fn func(d *stateData, cp *ControlPolicy) error) (*ControlPolicy, error) {
	id, err := c.required("PolicyId")
	if err != nil {
		return nil, err
	}
	if err := c.authorize(op, controlResource(id), nil); err != nil {
		return nil, err
	}
	var out *ControlPolicy
	err = h.state.update(func(d *stateData) error {
		cp, ok := d.ControlPolicies[id]
		if !ok {
			return errNotFound("ControlPolicy", id)
		}
		if err := fn(d, cp); err != nil {
			return err
		}
		out = cp
		return nil
	})
	if err != nil {
		return nil, docErr(err)
	}
	return out, nil
}

func errSystem(id string) error {
	return &apiError{status: http.StatusBadRequest, code: "InvalidParameter.PolicyId.SystemPolicy",
		msg: fmt.Sprintf("%s is a system control policy; it can be attached and detached but not changed", id)}
}

func (h *Handler) updateControl(c *call) (map[string]any, error) {
	name, hasName := c.param("NewPolicyName")
	if hasName {
		if err := checkPolicyName("NewPolicyName", name); err != nil {
			return nil, err
		}
	}
	desc, hasDesc := c.param("NewDescription")
	if hasDesc {
		if err := checkDescription("NewDescription", desc); err != nil {
			return nil, err
		}
	}
	doc, hasDoc := c.param("NewPolicyDocument")
	if hasDoc {
		if _, err := h.state.validator.Parse("NewPolicyDocument", doc, iam.Permission); err != nil {
			return nil, docErr(err)
		}
	}
	cp, err := h.withControl(c, "UpdateControlPolicy", func(d *stateData, cp *ControlPolicy) error {
		if cp.PolicyType == "System" {
			return errSystem(cp.PolicyID)
		}
		if hasName {
			for _, o := range d.ControlPolicies {
				if o.PolicyName == name && o.PolicyID != cp.PolicyID {
					return errExists("ControlPolicy", name)
				}
			}
			cp.PolicyName = name
		}
		if hasDesc {
			cp.Description = desc
		}
		if hasDoc {
			cp.PolicyDocument = doc
		}
		cp.UpdateDate = c.now.UTC().Format("2006-01-02T15:04:05Z")
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"ControlPolicy": controlView(cp)}, nil
}

func (h *Handler) deleteControl(c *call) (map[string]any, error) {
	_, err := h.withControl(c, "DeleteControlPolicy", func(d *stateData, cp *ControlPolicy) error {
		if cp.PolicyType == "System" {
			return errSystem(cp.PolicyID)
		}
		if len(cp.Targets) > 0 {
			return &apiError{status: http.StatusConflict, code: "DeleteConflict.ControlPolicy.Attachment",
				msg: fmt.Sprintf("%s is attached to %s; detach it first", cp.PolicyID, strings.Join(cp.Targets, ", "))}
		}
		delete(d.ControlPolicies, cp.PolicyID)
		return nil
	})
	return nil, err
}

// checkTarget accepts "*" (every caller), user:<id>, group:<name> and
// agency:<id> (an existing agency).
func checkTarget(param, t string, d *stateData) error {
	kind, id, _ := strings.Cut(t, ":")
	switch {
	case t == iam.TargetAll:
		return nil
	case id == "":
	case kind == "user" || kind == "group":
		return nil
	case kind == "agency":
		if _, ok := d.Agencies[id]; ok {
			return nil
		}
		return errNotFound("Agency", id)
	}
	return errParam(param, "%s %q: expected *, user:<principal>, group:<name> or agency:<agency_id>", param, t)
}

func (h *Handler) attachControl(c *call) (map[string]any, error) {
	target, err := c.required("TargetId")
	if err != nil {
		return nil, err
	}
	_, err = h.withControl(c, "AttachControlPolicy", func(d *stateData, cp *ControlPolicy) error {
		if err := checkTarget("TargetId", target, d); err != nil {
			return err
		}
		if slices.Contains(cp.Targets, target) {
			return &apiError{status: http.StatusConflict, code: "EntityAlreadyExists.Attachment",
				msg: fmt.Sprintf("%s is already attached to %s", cp.PolicyID, target)}
		}
		cp.Targets = append(cp.Targets, target)
		return nil
	})
	return nil, err
}

func (h *Handler) detachControl(c *call) (map[string]any, error) {
	target, err := c.required("TargetId")
	if err != nil {
		return nil, err
	}
	_, err = h.withControl(c, "DetachControlPolicy", func(d *stateData, cp *ControlPolicy) error {
		i := slices.Index(cp.Targets, target)
		if i < 0 {
			return &apiError{status: http.StatusNotFound, code: "EntityNotExist.Attachment",
				msg: fmt.Sprintf("%s is not attached to %s", cp.PolicyID, target)}
		}
		cp.Targets = slices.Delete(cp.Targets, i, i+1)
		return nil
	})
	return nil, err
}

func (h *Handler) listControl(c *call) (map[string]any, error) {
	page, size, err := c.page("PageNumber")
	if err != nil {
		return nil, err
	}
	typ, _ := c.param("PolicyType")
	if typ != "" && typ != "System" && typ != "Custom" {
		return nil, errParam("PolicyType", "PolicyType %q: expected System or Custom", typ)
	}
	if err := c.authorize("ListControlPolicies", controlResource("*"), nil); err != nil {
		return nil, err
	}
	d := h.state.load().data
	var list []any
	for _, id := range sortedKeys(d.ControlPolicies) {
		cp := d.ControlPolicies[id]
		if typ != "" && cp.PolicyType != typ {
			continue
		}
		v := controlView(cp)
		v["PolicyDocument"] = cp.PolicyDocument
		v["Targets"] = append([]string{}, cp.Targets...)
		list = append(list, v)
	}
	return map[string]any{"ControlPolicies": map[string]any{"ControlPolicy": pageOf(list, page, size)},
		"TotalCount": len(list), "PageNumber": page, "PageSize": size}, nil
}
