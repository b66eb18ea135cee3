package rego

import (
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/workload"
	"github.com/open-policy-agent/opa/v1/ast"
)

// Keys of the input document, shared so a request allocates only values.
var (
	kNamespace    = ast.StringTerm("namespace")
	kApplicable   = ast.StringTerm("applicable")
	kPolicies     = ast.StringTerm("policies")
	kPolicyIDs    = ast.StringTerm("policyIds")
	kIndex        = ast.StringTerm("index")
	kLabelIDs     = ast.StringTerm("labelIds")
	kImages       = ast.StringTerm("images")
	kRef          = ast.StringTerm("ref")
	kInvalid      = ast.StringTerm("invalid")
	kCriteriaIDs  = ast.StringTerm("criteriaIds")
	kNameIDs      = ast.StringTerm("nameIds")
	kExemptIDs    = ast.StringTerm("exemptIds")
	kCriteria     = ast.StringTerm("criteria")
	kTexts        = ast.StringTerm("texts")
	kAttestors    = ast.StringTerm("attestors")
	kErrors       = ast.StringTerm("errors")
	kUnverifiable = ast.StringTerm("unverifiable")
	kScanNote     = ast.StringTerm("scanNote")
	kDetail       = ast.StringTerm("detail")
	emptyString   = ast.StringTerm("")
	emptyArray    = ast.ArrayTerm()
	emptyObject   = ast.ObjectTerm()
	keyEvery      = ast.StringTerm("*")
	keyUnscanned  = ast.StringTerm("u")
	keyMalicious  = ast.StringTerm("m")
)

// toInput builds the request's part of the Rego input straight from Go
// values (no JSON round trip), with the namespace, each image's keys and the
// pod's labels already resolved to strategy-id sets. It is what the decision
// cache compares; withIndex adds the snapshot's index for evaluation.
func (e *Engine) toInput(in Input, now time.Time) ast.Object {
	applicable, _ := e.lookups.namespace(in.Namespace)
	policies := e.lookups.namespacePolicies(in.Namespace)
	imgs := make([]*ast.Term, len(in.Images))
	for i := range in.Images {
		var f *facts.Image
		if i < len(in.Facts) {
			f = in.Facts[i]
		}
		imgs[i] = e.imageTerm(&in.Images[i], f, now, setLen(policies) > 0)
	}
	return ast.NewObject(
		ast.Item(kNamespace, ast.StringTerm(in.Namespace)),
		ast.Item(kApplicable, applicable),
		ast.Item(kPolicies, policies),
		ast.Item(kLabelIDs, e.lookups.labelIDs(in.Labels)),
		ast.Item(kImages, ast.ArrayTerm(imgs...)),
	)
}

// withIndex is the evaluation input: the request's fields and the index,
// shared by reference (a request copies none of it).
func (e *Engine) withIndex(request ast.Object) ast.Value {
	items := make([][2]*ast.Term, 0, request.Len()+1)
	request.Foreach(func(k, v *ast.Term) { items = append(items, ast.Item(k, v)) })
	return ast.NewObject(append(items, ast.Item(kIndex, e.index))...)
}

var noFacts facts.Image

// imageValue is one image of the input. withPolicies says whether any
// signature policy is in force in the namespace; only then does the image
// carry the policies its name selects (policyIds), which the decision
// intersects with them.
func (e *Engine) imageValue(img *workload.Image, f *facts.Image, now time.Time, withPolicies bool) ast.Value {
	if f == nil {
		f = &noFacts
	}
	invalid := emptyString
	if img.Err != nil {
		invalid = ast.StringTerm(img.Err.Error())
	}
	var names, exempt idSet
	for _, n := range img.Names {
		if ids, ok := e.lookups.names[n]; ok {
			names.add(ids)
		}
	}
	for i := range e.lookups.nameGlobs {
		g := &e.lookups.nameGlobs[i]
		for _, n := range img.Names {
			if g.match(n) {
				names.add(g.ids)
				break
			}
		}
	}
	if img.Tag != "" {
		if ids, ok := e.lookups.tags[img.Tag]; ok {
			exempt.add(ids)
		}
		for i := range e.lookups.tagGlobs {
			g := &e.lookups.tagGlobs[i]
			if g.match(img.Tag) {
				exempt.add(g.ids)
			}
		}
	}
	criteriaIDs, criteria, texts := e.criteria(f, now)
	errs := emptyObject
	if len(f.AttestorErrors) > 0 {
		items := make([][2]*ast.Term, 0, len(f.AttestorErrors))
		for k, v := range f.AttestorErrors {
			items = append(items, ast.Item(ast.StringTerm(k), ast.StringTerm(v)))
		}
		errs = ast.ObjectTerm(items...)
	}
	scanNote := emptyString
	if f.ScanNote != "" {
		scanNote = ast.StringTerm(f.ScanNote)
	}
	// Eight keys: an ast.Object of up to eight keys costs half of one with
	// eleven. What only the signature gate's and the scan's messages read
	// goes into detail, shared when empty (the usual case); invalid is there
	// only for an invalid reference (decision.rego's first clause is then
	// undefined for the others, as with ""), and policyIds only where a
	// signature policy is in force.
	detail := noDetail
	if errs != emptyObject || len(f.Unverifiable) > 0 || scanNote != emptyString {
		detail = ast.ObjectTerm(
			ast.Item(kErrors, errs),
			ast.Item(kUnverifiable, stringSetTerm(f.Unverifiable)),
			ast.Item(kScanNote, scanNote),
		)
	}
	items := [][2]*ast.Term{
		ast.Item(kRef, ast.StringTerm(img.Ref)),
		ast.Item(kCriteriaIDs, criteriaIDs),
		ast.Item(kNameIDs, names.termOr(e.lookups.nameAny)),
		ast.Item(kExemptIDs, exempt.term()),
		ast.Item(kCriteria, criteria),
		ast.Item(kTexts, texts),
		ast.Item(kAttestors, e.attestors.set(f.Attestors)),
		ast.Item(kDetail, detail),
	}
	if invalid != emptyString {
		items = append(items, ast.Item(kInvalid, invalid))
	}
	if withPolicies {
		items = append(items, ast.Item(kPolicyIDs, e.lookups.policyIDs(img.Names)))
	}
	return ast.NewObject(items...)
}

var noDetail = ast.ObjectTerm(
	ast.Item(kErrors, emptyObject),
	ast.Item(kUnverifiable, emptySet),
	ast.Item(kScanNote, emptyString),
)

// criteria returns the strategies the image's criterion keys select, the
// keys themselves (each mapped to the positions of the findings behind it in
// the scan result), and the display text of each finding some strategy
// selects, by position ("" for the others), for the messages.
//
// Keys: "*" every image (rules without criteria); "u" unscanned (no scan
// result, or one older than --max-scan-age); "m" malicious (a feed lists the
// digest, the scan marks it so, or it has a MaliciousFile finding); and the
// finding keys.
func (e *Engine) criteria(f *facts.Image, now time.Time) (ids, keys, texts *ast.Term) {
	s := f.Scan
	var set idSet
	items := make([][2]*ast.Term, 0, 4)
	// Only the flags some strategy has are listed (decision.rego names them
	// in explanations); "*" needs no entry, nothing explains by it.
	flag := func(key *ast.Term) {
		k, ok := e.lookups.criteria[string(key.Value.(ast.String))]
		if !ok {
			return
		}
		set.add(k)
		if ids, _ := k.Value.(ast.Set); ids != nil && ids.Len() > 0 && key != keyEvery {
			items = append(items, ast.Item(key, emptyArray))
		}
	}
	flag(keyEvery)
	if s == nil || e.stale(s, now) {
		flag(keyUnscanned)
	}
	if f.Malicious || (s != nil && (s.Malicious || hasCategory(s.Findings, facts.MaliciousFile))) {
		flag(keyMalicious)
	}
	if s == nil || len(e.lookups.findings) == 0 {
		return set.term(), flagsOnly(items), emptyArray
	}
	var text []*ast.Term
	// An image has few distinct keys: a slice searched linearly beats a map.
	type hit struct {
		entry *findingEntry
		pos   []*ast.Term
	}
	var hits []hit
	e.lookups.findingsOf(s.Findings, func(fe *findingEntry, i int) {
		if text == nil {
			text = make([]*ast.Term, len(s.Findings))
			for j := range text {
				text[j] = emptyString
			}
		}
		if text[i] == emptyString {
			fd := &s.Findings[i]
			text[i] = ast.StringTerm(fd.Category + " " + fd.ID + " (" + fd.Level + ")")
		}
		for j := range hits {
			if hits[j].entry == fe {
				hits[j].pos = append(hits[j].pos, ast.InternedTerm(i))
				return
			}
		}
		set.add(fe.ids)
		hits = append(hits, hit{fe, []*ast.Term{ast.InternedTerm(i)}})
	})
	if text == nil {
		return set.term(), ast.ObjectTerm(items...), emptyArray
	}
	for _, h := range hits {
		items = append(items, ast.Item(h.entry.key, ast.ArrayTerm(h.pos...)))
	}
	return set.term(), ast.ObjectTerm(items...), ast.ArrayTerm(text...)
}

// The criteria objects of images without findings any strategy selects:
// shared, since they can only be these four.
var (
	flagsU  = ast.ObjectTerm(ast.Item(keyUnscanned, emptyArray))
	flagsM  = ast.ObjectTerm(ast.Item(keyMalicious, emptyArray))
	flagsUM = ast.ObjectTerm(ast.Item(keyUnscanned, emptyArray), ast.Item(keyMalicious, emptyArray))
)

func flagsOnly(items [][2]*ast.Term) *ast.Term {
	switch {
	case len(items) == 0:
		return emptyObject
	case len(items) == 2:
		return flagsUM
	case items[0][0] == keyUnscanned:
		return flagsU
	}
	return flagsM
}

func hasCategory(fs []facts.Finding, category string) bool {
	for i := range fs {
		if fs[i].Category == category {
			return true
		}
	}
	return false
}

// stale reports whether a scan result is too old to count (--max-scan-age):
// such an image is unscanned. A result without a time never goes stale.
func (e *Engine) stale(s *facts.Scan, now time.Time) bool {
	return e.opts.maxScanAge > 0 && !s.ScannedAt.IsZero() && now.Sub(s.ScannedAt) > e.opts.maxScanAge
}

func setLen(t *ast.Term) int {
	if s, ok := t.Value.(ast.Set); ok {
		return s.Len()
	}
	return 0
}

func stringSetTerm(ss []string) *ast.Term {
	if len(ss) == 0 {
		return emptySet
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.SetTerm(ts...)
}

// attestorSets hands out the set term of a list of attestor names, the same
// term for the same list: most images are verified by the same one or two
// attestors, and a set costs several allocations to build. Input terms are
// never modified, so sharing them is safe. The number of distinct lists is
// bounded by the combinations of a snapshot's attestors.
type attestorSets struct {
	m sync.Map // joined names -> *ast.Term
}

func (a *attestorSets) set(names []string) *ast.Term {
	switch len(names) {
	case 0:
		return emptySet
	case 1:
		if t, ok := a.m.Load(names[0]); ok {
			return t.(*ast.Term)
		}
	}
	key := strings.Join(names, "\x00")
	if t, ok := a.m.Load(key); ok {
		return t.(*ast.Term)
	}
	t, _ := a.m.LoadOrStore(key, stringSetTerm(names))
	return t.(*ast.Term)
}
