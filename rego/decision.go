package rego

import (
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Action is what happens to one image.
type Action string

// Actions, as imagegate check prints them.
const (
	Pass     Action = "pass"
	Alert    Action = "alert"
	Block    Action = "block"
	Allow    Action = "allow"
	Unsigned Action = "unsigned" // the signature gate failed, whatever strategies say
)

// Decision is the verdict on one request.
type Decision struct {
	Allowed bool
	Images  []ImageDecision
	// Violations are the lines of the denial message: unsigned images and
	// blocking strategies.
	Violations []string
	// Warnings are alerts (and verification errors admitted by configuration).
	Warnings []string
}

// ImageDecision is the verdict on one image.
type ImageDecision struct {
	Image            string   `json:"image"`
	Action           Action   `json:"action"`
	Strategies       []int64  `json:"strategies"`       // ids of the strategies that hit the image
	MissingAttestors []string `json:"missingAttestors"` // required attestors that did not verify
	Reasons          []string `json:"reasons"`
	// Findings are the scan findings behind the strategies that hit (for
	// audit events; check's JSON output leaves them out).
	Findings []Finding `json:"-"`
}

// Finding is a scan finding a strategy hit on.
type Finding struct {
	Category string `json:"category"`
	ID       string `json:"id"`
	Level    string `json:"level"`
}

var (
	kAllowed    = ast.StringTerm("allowed")
	kViolations = ast.StringTerm("violations")
	kWarnings   = ast.StringTerm("warnings")
	kAction     = ast.StringTerm("action")
	kStrategies = ast.StringTerm("strategies")
	kMissing    = ast.StringTerm("missing")
	kReasons    = ast.StringTerm("reasons")
	kFindings   = ast.StringTerm("findings")
)

// toDecision reads the result document without converting it to generic Go
// values first.
func toDecision(t *ast.Term, in Input) (*Decision, error) {
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("rego: decision is %T, not an object", t.Value)
	}
	d := &Decision{Violations: []string{}, Warnings: []string{}}
	if b, ok := get(obj, kAllowed).(ast.Boolean); ok {
		d.Allowed = bool(b)
	} else {
		return nil, fmt.Errorf("rego: decision has no allowed")
	}
	imgs, ok := get(obj, kImages).(*ast.Array)
	if !ok || imgs.Len() != len(in.Images) {
		return nil, fmt.Errorf("rego: decision has no verdict per image")
	}
	d.Images = make([]ImageDecision, imgs.Len())
	for i := range d.Images {
		io, ok := imgs.Elem(i).Value.(ast.Object)
		if !ok {
			return nil, fmt.Errorf("rego: image verdict %d is not an object", i)
		}
		a, _ := get(io, kAction).(ast.String)
		d.Violations = append(d.Violations, stringList(get(io, kViolations))...)
		d.Warnings = append(d.Warnings, stringList(get(io, kWarnings))...)
		d.Images[i] = ImageDecision{
			Image:            in.Images[i].Ref,
			Action:           Action(a),
			Strategies:       ints(get(io, kStrategies)),
			MissingAttestors: stringList(get(io, kMissing)),
			Reasons:          stringList(get(io, kReasons)),
			Findings:         findingList(get(io, kFindings), in, i),
		}
	}
	return d, nil
}

func get(o ast.Object, k *ast.Term) ast.Value {
	if v := o.Get(k); v != nil {
		return v.Value
	}
	return nil
}

func stringList(v ast.Value) []string {
	arr, ok := v.(*ast.Array)
	if !ok {
		return []string{}
	}
	out := make([]string, 0, arr.Len())
	for i := 0; i < arr.Len(); i++ {
		if s, ok := arr.Elem(i).Value.(ast.String); ok {
			out = append(out, string(s))
		}
	}
	return out
}

func ints(v ast.Value) []int64 {
	arr, ok := v.(*ast.Array)
	if !ok {
		return []int64{}
	}
	out := make([]int64, 0, arr.Len())
	for i := 0; i < arr.Len(); i++ {
		if n, ok := arr.Elem(i).Value.(ast.Number); ok {
			if x, err := json.Number(n).Int64(); err == nil {
				out = append(out, x)
			}
		}
	}
	return out
}

// findingList turns the positions the decision names into the image's scan
// findings.
func findingList(v ast.Value, in Input, image int) []Finding {
	arr, ok := v.(*ast.Array)
	if !ok || arr.Len() == 0 || image >= len(in.Facts) || in.Facts[image] == nil || in.Facts[image].Scan == nil {
		return nil
	}
	fs := in.Facts[image].Scan.Findings
	out := make([]Finding, 0, arr.Len())
	for i := 0; i < arr.Len(); i++ {
		n, ok := arr.Elem(i).Value.(ast.Number)
		if !ok {
			continue
		}
		p, ok := n.Int()
		if !ok || p < 0 || p >= len(fs) {
			continue
		}
		out = append(out, Finding{Category: fs[p].Category, ID: fs[p].ID, Level: fs[p].Level})
	}
	return out
}
