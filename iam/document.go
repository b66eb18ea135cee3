package iam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxDocumentLen is the clouds' limit on a policy document, in characters.
const MaxDocumentLen = 4096

// Kind says which grammar a document follows.
type Kind int

const (
	// Permission documents (control and custom policies) have no Principal.
	Permission Kind = iota
	// Trust documents (an agency's trust policy) name principals and sts actions.
	Trust
)

// Error codes, completed with the parameter name as the clouds' APIs spell them
// (InvalidParameter.NewPolicyDocument.Length).
const (
	codeLength    = "Length"
	codeMalformed = "Malformed"
)

// Error is a refused document: Code is the cloud-style error code naming the
// parameter, Path the place in the document.
type Error struct {
	Code  string
	Param string
	Path  string
	Msg   string
}

func (e *Error) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("%s: %s: %s", e.Param, e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Param, e.Msg)
}

// Document is a policy document as written: Statement fields keep their
// list form so it can be returned the way the clouds' APIs return it.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a document.
type Statement struct {
	Sid          string                          `json:"Sid,omitempty"`
	Effect       string                          `json:"Effect"`
	Principal    map[string]strList              `json:"Principal,omitempty"`
	NotPrincipal map[string]strList              `json:"NotPrincipal,omitempty"`
	Action       strList                         `json:"Action,omitempty"`
	NotAction    strList                         `json:"NotAction,omitempty"`
	Resource     strList                         `json:"Resource,omitempty"`
	NotResource  strList                         `json:"NotResource,omitempty"`
	Condition    map[string]map[string]valueList `json:"Condition,omitempty"`
}

// strList accepts a string or a list of strings.
type strList []string

func (l *strList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = strList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("expected a string or a list of strings")
	}
	*l = many
	return nil
}

// valueList accepts a condition value (string, number or boolean) or a list
// of them, kept as strings.
type valueList []string

func (l *valueList) UnmarshalJSON(b []byte) error {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	items, isList := raw.([]any)
	if !isList {
		items = []any{raw}
	}
	out := make(valueList, 0, len(items))
	for _, it := range items {
		switch v := it.(type) {
		case string:
			out = append(out, v)
		case json.Number:
			out = append(out, v.String())
		case bool:
			out = append(out, fmt.Sprint(v))
		default:
			return errors.New("expected a string, number or boolean, or a list of them")
		}
	}
	*l = out
	return nil
}

// Versions accepted: Resource Directory control policies write "1", Huawei
// Cloud IAM custom policies "1.1", Huawei Cloud IAM trust policies "5.0".
var versions = map[string]bool{"1": true, "1.1": true, "5.0": true}

// Validator checks actions against the operations the API offers, so a
// misspelt action is refused when written, not silently never matched.
type Validator struct {
	// KnownActions are the exact imagegate:<Operation> names (any case).
	KnownActions []string
}

// Parse validates text as a document of kind and compiles it. param names
// the request parameter in errors and codes.
func (v Validator) Parse(param, text string, kind Kind) (*Policy, error) {
	fail := func(code, path, format string, args ...any) error {
		return &Error{Code: "InvalidParameter." + param + "." + code, Param: param, Path: path, Msg: fmt.Sprintf(format, args...)}
	}
	if n := utf8.RuneCountInString(text); n > MaxDocumentLen {
		return nil, fail(codeLength, "", "Unable to save your policy. A policy contains a maximum of %d characters (this one has %d).", MaxDocumentLen, n)
	}
	if strings.TrimSpace(text) == "" {
		return nil, fail(codeMalformed, "", "the policy document is empty")
	}
	var doc Document
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fail(codeMalformed, "", "not a policy document: %s", jsonMsg(err))
	}
	if dec.More() {
		return nil, fail(codeMalformed, "", "text after the policy document")
	}
	if !versions[doc.Version] {
		return nil, fail(codeMalformed, "Version", "%q is not a supported version (expected \"1\", \"1.1\" or \"5.0\")", doc.Version)
	}
	if len(doc.Statement) == 0 {
		return nil, fail(codeMalformed, "Statement", "at least one statement is required")
	}
	known := map[string]bool{}
	for _, a := range v.KnownActions {
		known[strings.ToLower(a)] = true
	}
	p := &Policy{Doc: doc, Text: text}
	for i := range doc.Statement {
		cs, path, err := compileStatement(&doc.Statement[i], i, kind, known)
		if err != nil {
			return nil, fail(codeMalformed, path, "%s", err)
		}
		p.statements = append(p.statements, cs)
	}
	return p, nil
}

func jsonMsg(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s: expected %s", te.Field, te.Type)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func compileStatement(st *Statement, i int, kind Kind, known map[string]bool) (*statement, string, error) {
	at := func(field string) string { return fmt.Sprintf("Statement[%d].%s", i, field) }
	cs := &statement{index: i, sid: st.Sid}
	switch st.Effect {
	case "Allow":
		cs.allow = true
	case "Deny":
	default:
		return nil, at("Effect"), fmt.Errorf("%q: expected Allow or Deny", st.Effect)
	}
	if (st.Action == nil) == (st.NotAction == nil) {
		return nil, at("Action"), errors.New("exactly one of Action and NotAction is required")
	}
	actions, field := st.Action, "Action"
	if st.NotAction != nil {
		actions, field, cs.notAction = st.NotAction, "NotAction", true
	}
	if len(actions) == 0 {
		return nil, at(field), errors.New("must not be empty")
	}
	for j, a := range actions {
		if err := checkAction(a, kind, known); err != nil {
			return nil, fmt.Sprintf("%s[%d]", at(field), j), err
		}
		cs.actions = append(cs.actions, compileMatcher(strings.ToLower(a)))
	}
	if st.Resource != nil && st.NotResource != nil {
		return nil, at("Resource"), errors.New("Resource and NotResource are exclusive")
	}
	resources, field := st.Resource, "Resource"
	if st.NotResource != nil {
		resources, field, cs.notResource = st.NotResource, "NotResource", true
	}
	if resources == nil && kind == Permission {
		return nil, at("Resource"), errors.New("one of Resource and NotResource is required")
	}
	if resources != nil && len(resources) == 0 {
		return nil, at(field), errors.New("must not be empty")
	}
	for j, r := range resources {
		if r != "*" && !strings.HasPrefix(r, "imagegate:") {
			return nil, fmt.Sprintf("%s[%d]", at(field), j), fmt.Errorf("%q: expected \"*\" or imagegate:<type>/<id>", r)
		}
		cs.resources = append(cs.resources, compileMatcher(r))
	}
	if resources == nil {
		cs.resources = []matcher{{kind: matchAll}}
	}
	if err := compilePrincipals(st, cs, kind); err != nil {
		return nil, at("Principal"), err
	}
	ops := make([]string, 0, len(st.Condition))
	for op := range st.Condition {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		keys := make([]string, 0, len(st.Condition[op]))
		for k := range st.Condition[op] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c, err := compileCondition(op, k, st.Condition[op][k])
			if err != nil {
				return nil, at("Condition." + op + "." + k), err
			}
			cs.conds = append(cs.conds, c)
		}
		if len(keys) == 0 {
			return nil, at("Condition." + op), errors.New("names no condition key")
		}
	}
	return cs, "", nil
}

func checkAction(a string, kind Kind, known map[string]bool) error {
	if a == "*" {
		return nil
	}
	svc, op, ok := strings.Cut(a, ":")
	if !ok || svc == "" || op == "" {
		return fmt.Errorf("%q: expected service:Operation", a)
	}
	switch kind {
	case Trust:
		if svc != "sts" {
			return fmt.Errorf("%q: a trust policy governs sts actions (sts:agencies:assume)", a)
		}
	default:
		if svc != "imagegate" {
			return fmt.Errorf("%q: expected an imagegate:<Operation> action", a)
		}
		if len(known) > 0 && !strings.ContainsAny(op, "*?") && !known[strings.ToLower(a)] {
			return fmt.Errorf("%q: no such operation", a)
		}
	}
	return nil
}

func compilePrincipals(st *Statement, cs *statement, kind Kind) error {
	if kind == Permission {
		if st.Principal != nil || st.NotPrincipal != nil {
			return errors.New("only trust policies name principals")
		}
		return nil
	}
	if (st.Principal == nil) == (st.NotPrincipal == nil) {
		return errors.New("exactly one of Principal and NotPrincipal is required")
	}
	m := st.Principal
	if st.NotPrincipal != nil {
		m, cs.notPrincipal = st.NotPrincipal, true
	}
	if len(m) == 0 {
		return errors.New("must name IAM or Service principals")
	}
	cs.hasPrincipal = true
	for typ, ids := range m {
		switch typ {
		case "IAM":
			for _, id := range ids {
				if id == "" {
					return errors.New("IAM: empty principal id")
				}
				cs.principals = append(cs.principals, compileMatcher(id))
			}
		case "Service":
			// Services never call the management API; kept so the clouds' documents load.
		default:
			return fmt.Errorf("%q: expected IAM or Service", typ)
		}
	}
	return nil
}
