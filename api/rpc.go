package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/imagegate/imagegate/policy"
)

type rpcFunc func(c *call) (map[string]any, error)

// rpcOps are the RPC operations by Action name.
func (h *Handler) rpcOps() map[string]rpcFunc {
	return map[string]rpcFunc{
		"CreateBinarySecurityPolicy":     h.createBSP,
		"ModifyBinarySecurityPolicy":     h.modifyBSP,
		"DeleteBinarySecurityPolicy":     h.deleteBSP,
		"DescribeBinarySecurityPolicies": h.describeBSPs,
		"CreateAttestor":                 h.createAttestor,
		"ModifyAttestor":                 h.modifyAttestor,
		"DeleteAttestor":                 h.deleteAttestor,
		"DescribeAttestors":              h.describeAttestors,
		"CreateOpaStrategyNew":           h.createOpa,
		"UpdateOpaStrategyNew":           h.updateOpa,
		"GetOpaStrategyDetailNew":        h.getOpa,
		"ListOpaClusterStrategyNew":      h.listOpa,
		"DeleteOpaStrategyNew":           h.deleteOpa,
		"CreateControlPolicy":            h.createControl,
		"UpdateControlPolicy":            h.updateControl,
		"DeleteControlPolicy":            h.deleteControl,
		"AttachControlPolicy":            h.attachControl,
		"DetachControlPolicy":            h.detachControl,
		"ListControlPolicies":            h.listControl,
		"CreateAccessKey":                h.createAccessKey,
		"ListAccessKeys":                 h.listAccessKeys,
		"UpdateAccessKey":                h.updateAccessKey,
		"DeleteAccessKey":                h.deleteAccessKey,
	}
}

// restActions are the actions of the REST operations (IAM v5 and v3).
var restActions = []string{
	"CreateAgency", "GetAgency", "DeleteAgency", "UpdateTrustPolicy",
	"CreateRole", "GetRole", "ListRoles", "UpdateRole", "DeleteRole", "AttachRole", "DetachRole",
}

// KnownActions lists every imagegate:<Operation> a policy document can name.
func KnownActions() []string {
	var out []string
	for op := range (&Handler{}).rpcOps() {
		out = append(out, "imagegate:"+op)
	}
	for _, op := range slices.Concat(restActions, ConsoleActions) {
		out = append(out, "imagegate:"+op)
	}
	slices.Sort(out)
	return out
}

func (h *Handler) rpc(c *call) (any, int, error) {
	if err := c.r.ParseForm(); err != nil {
		return nil, 0, errParam("Body", "the request parameters do not parse: %v", err)
	}
	name := c.r.Form.Get("Action")
	if name == "" {
		// The V3 signature (ACS3-HMAC-SHA256) names the operation in a
		// signed header rather than a parameter.
		name = c.r.Header.Get("x-acs-action")
	}
	c.ev.Action = "imagegate:" + name
	if name == "" {
		return nil, 0, errParam("Action", "Action is required (POST /?Action=NAME)")
	}
	fn, ok := h.ops[name]
	if !ok {
		return nil, 0, &apiError{status: http.StatusNotFound, code: "InvalidAction.NotFound", msg: fmt.Sprintf("Specified api %q is not found", name)}
	}
	out, err := fn(c)
	if err != nil {
		return nil, 0, err
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, http.StatusOK, nil
}

func (c *call) param(name string) (string, bool) {
	vs, ok := c.r.Form[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

func (c *call) required(name string) (string, error) {
	v, ok := c.param(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", errParam(name, "%s is required", name)
	}
	return v, nil
}

func (c *call) intParam(name string, def int64) (int64, error) {
	v, ok := c.param(name)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, errParam(name, "%s: %q is not an integer", name, v)
	}
	return n, nil
}

// page reads a page number parameter and PageSize (1-100, default 20).
func (c *call) page(pageParam string) (page, size int, err error) {
	p, err := c.intParam(pageParam, 1)
	if err != nil {
		return 0, 0, err
	}
	if p < 1 {
		return 0, 0, errParam(pageParam, "%s must be at least 1", pageParam)
	}
	s, err := c.intParam("PageSize", 20)
	if err != nil {
		return 0, 0, err
	}
	if s < 1 || s > 100 {
		return 0, 0, errParam("PageSize", "PageSize must be 1 to 100")
	}
	return int(p), int(s), nil
}

// pageOf is one page of items, never nil, so an empty page answers [] rather
// than null.
func pageOf[T any](items []T, page, size int) []T {
	start := (page - 1) * size
	if start >= len(items) {
		return []T{}
	}
	return items[start:min(start+size, len(items))]
}

type fieldKind int

const (
	fString fieldKind = iota
	fInt
	fBool
	fJSON
)

// field maps a request parameter onto a spec field (by its JSON key).
type field struct {
	param, key string
	kind       fieldKind
}

// setFields sets the spec fields whose parameters the request carries.
// Complex values are JSON strings (Security Center BinarySecurityPolicy), decoded strictly into the
// field's type; keys match case-insensitively, so the documented
// {"PolicyMode":…,"RequiredAttestors":[…]} and the spec's lowerCamel both load.
func (c *call) setFields(spec any, fields []field) error {
	v := reflect.ValueOf(spec).Elem()
	for _, f := range fields {
		raw, ok := c.param(f.param)
		if !ok {
			continue
		}
		fv := fieldByKey(v, f.key)
		switch f.kind {
		case fString:
			fv.SetString(raw)
		case fInt:
			n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
			if err != nil {
				return errParam(f.param, "%s: %q is not an integer", f.param, raw)
			}
			fv.SetInt(n)
		case fBool:
			b, err := strconv.ParseBool(strings.TrimSpace(raw))
			if err != nil {
				return errParam(f.param, "%s: %q: expected true or false", f.param, raw)
			}
			fv.SetBool(b)
		case fJSON:
			ptr := reflect.New(fv.Type())
			dec := json.NewDecoder(strings.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(ptr.Interface()); err != nil {
				return &apiError{status: http.StatusBadRequest, code: "InvalidParameter." + f.param + ".Malformed",
					msg: fmt.Sprintf("%s must be a JSON string of the documented shape: %s", f.param, jsonErr(err))}
			}
			if dec.More() {
				return &apiError{status: http.StatusBadRequest, code: "InvalidParameter." + f.param + ".Malformed", msg: f.param + ": text after the JSON value"}
			}
			fv.Set(ptr.Elem())
		}
	}
	return nil
}

func jsonErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s: expected %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("expected %s, got %s", te.Type, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func fieldByKey(v reflect.Value, key string) reflect.Value {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name == key {
			return v.Field(i)
		}
	}
	panic("api: no spec field " + key) // a programming error in a fields table
}

// applyErr turns a store refusal into the parameter it concerns.
func applyErr(err error, target Ref, fields []field, nameParam string) error {
	var inv *InvalidError
	if errors.As(err, &inv) {
		var lines []string
		var param string
		other := false
		for _, fe := range inv.Errs {
			if fe.Kind != target.Kind || fe.Name != target.Name {
				other = true
			} else if param == "" {
				param = paramOf(fe.Path, fields, nameParam)
			}
			e := *fe
			e.File = ""
			lines = append(lines, e.Error())
		}
		msg := strings.Join(lines, "; ")
		if param == "" || other {
			return &apiError{status: http.StatusConflict, code: "EntityInUse", msg: "the change would leave other policy objects invalid: " + msg}
		}
		return errParam(param, "%s", msg)
	}
	var shared *SharedFileError
	if errors.As(err, &shared) {
		return &apiError{status: http.StatusConflict, code: "Conflict.SharedFile", msg: shared.Error()}
	}
	var taken *FileTakenError
	if errors.As(err, &taken) {
		return &apiError{status: http.StatusConflict, code: "Conflict.FileExists", msg: taken.Error()}
	}
	var conflict *ConflictError
	if errors.As(err, &conflict) {
		return &apiError{status: http.StatusConflict, code: "Conflict.ConcurrentModification", msg: conflict.Error()}
	}
	return err
}

func paramOf(path string, fields []field, nameParam string) string {
	if strings.HasPrefix(path, "metadata.") {
		return nameParam
	}
	rest, ok := strings.CutPrefix(path, "spec.")
	if !ok {
		return nameParam
	}
	key := rest
	if i := strings.IndexAny(rest, ".["); i >= 0 {
		key = rest[:i]
	}
	for _, f := range fields {
		if f.key == key {
			return f.param
		}
	}
	return upperFirst(key)
}

func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// pascal re-keys a value's JSON form with upper-case initials, the clouds'
// response spelling (clusterId → ClusterId).
func pascal(v any) any {
	raw, _ := json.Marshal(v)
	var g any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	_ = dec.Decode(&g)
	return rekey(g)
}

func rekey(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[upperFirst(k)] = rekey(x)
		}
		return out
	case []any:
		for i := range t {
			t[i] = rekey(t[i])
		}
		return t
	}
	return v
}

func (h *Handler) snapshot() (*policy.Snapshot, error) {
	snap, err := h.store.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("reading policy objects: %w", err)
	}
	return snap, nil
}
