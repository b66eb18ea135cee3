package rego

import (
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/workload"
	"github.com/open-policy-agent/opa/v1/ast"
)

// Keys of the input document, shared so a request allocates only values.
var (
	kNamespace    = ast.StringTerm("namespace")
	kLabels       = ast.StringTerm("labels")
	kImages       = ast.StringTerm("images")
	kRef          = ast.StringTerm("ref")
	kInvalid      = ast.StringTerm("invalid")
	kCriteriaIDs  = ast.StringTerm("criteriaIds")
	kNameIDs      = ast.StringTerm("nameIds")
	kExemptIDs    = ast.StringTerm("exemptIds")
	kCriteria     = ast.StringTerm("criteria")
	kFindings     = ast.StringTerm("findings")
	kAttestors    = ast.StringTerm("attestors")
	kErrors       = ast.StringTerm("errors")
	kUnverifiable = ast.StringTerm("unverifiable")
	kScanNote     = ast.StringTerm("scanNote")
	kCategory     = ast.StringTerm("category")
	kID           = ast.StringTerm("id")
	kLevel        = ast.StringTerm("level")
	emptyString   = ast.StringTerm("")
	emptyArray    = ast.ArrayTerm()
	keyEvery      = ast.StringTerm("*")
	keyUnscanned  = ast.StringTerm("u")
	keyMalicious  = ast.StringTerm("m")
)

// toInput builds the Rego input straight from Go values (no JSON round trip),
// with each image's keys already resolved to strategy-id sets.
func (e *Engine) toInput(in Input, now time.Time) ast.Value {
	imgs := make([]*ast.Term, len(in.Images))
	for i := range in.Images {
		var f *facts.Image
		if i < len(in.Facts) {
			f = in.Facts[i]
		}
		imgs[i] = ast.NewTerm(e.imageValue(&in.Images[i], f, now))
	}
	labels := make([][2]*ast.Term, 0, len(in.Labels))
	for k, v := range in.Labels {
		labels = append(labels, ast.Item(ast.StringTerm(k), ast.StringTerm(v)))
	}
	return ast.NewObject(
		ast.Item(kNamespace, ast.StringTerm(in.Namespace)),
		ast.Item(kLabels, ast.NewTerm(ast.NewObject(labels...))),
		ast.Item(kImages, ast.ArrayTerm(imgs...)),
	)
}

func (e *Engine) imageValue(img *workload.Image, f *facts.Image, now time.Time) ast.Value {
	if f == nil {
		f = &facts.Image{}
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
	for _, g := range e.lookups.nameGlobs {
		for _, n := range img.Names {
			if g.glob.Match(n) {
				names.add(g.ids)
				break
			}
		}
	}
	if img.Tag != "" {
		if ids, ok := e.lookups.tags[img.Tag]; ok {
			exempt.add(ids)
		}
		for _, g := range e.lookups.tagGlobs {
			if g.glob.Match(img.Tag) {
				exempt.add(g.ids)
			}
		}
	}
	criteriaIDs, criteria, findings := e.criteria(f, now)
	errs := make([][2]*ast.Term, 0, len(f.AttestorErrors))
	for k, v := range f.AttestorErrors {
		errs = append(errs, ast.Item(ast.StringTerm(k), ast.StringTerm(v)))
	}
	return ast.NewObject(
		ast.Item(kRef, ast.StringTerm(img.Ref)),
		ast.Item(kInvalid, invalid),
		ast.Item(kCriteriaIDs, criteriaIDs),
		ast.Item(kNameIDs, names.term()),
		ast.Item(kExemptIDs, exempt.term()),
		ast.Item(kCriteria, criteria),
		ast.Item(kFindings, findings),
		ast.Item(kAttestors, stringSetTerm(f.Attestors)),
		ast.Item(kErrors, ast.NewTerm(ast.NewObject(errs...))),
		ast.Item(kUnverifiable, stringSetTerm(f.Unverifiable)),
		ast.Item(kScanNote, ast.StringTerm(f.ScanNote)),
	)
}

// criteria returns the strategies the image's criterion keys select, the
// keys themselves (each mapped to positions in the returned findings, for
// messages), and the findings some strategy selects.
//
// Keys: "*" every image (rules without criteria); "u" unscanned (no scan
// result, or one older than --max-scan-age); "m" malicious (a feed lists the
// digest, the scan marks it so, or it has a MaliciousFile finding); and the
// finding keys.
func (e *Engine) criteria(f *facts.Image, now time.Time) (ids, keys, findings *ast.Term) {
	s := f.Scan
	var set idSet
	items := make([][2]*ast.Term, 0, 4)
	flag := func(key *ast.Term) {
		if k, ok := e.lookups.criteria[string(key.Value.(ast.String))]; ok {
			set.add(k)
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
	if s == nil {
		return set.term(), ast.ObjectTerm(items...), emptyArray
	}
	byKey := map[findingKey][]*ast.Term{}
	var order []findingKey
	pos := map[int]int{}
	var found []*ast.Term
	e.lookups.findingsOf(s.Findings, func(k findingKey, ids *ast.Term, i int) {
		p, ok := pos[i]
		if !ok {
			p = len(found)
			pos[i] = p
			f := &s.Findings[i]
			found = append(found, ast.ObjectTerm(
				ast.Item(kCategory, ast.StringTerm(f.Category)),
				ast.Item(kID, ast.StringTerm(f.ID)),
				ast.Item(kLevel, ast.StringTerm(f.Level)),
			))
		}
		if _, seen := byKey[k]; !seen {
			order = append(order, k)
			set.add(ids)
		}
		byKey[k] = append(byKey[k], ast.IntNumberTerm(p))
	})
	for _, k := range order {
		items = append(items, ast.Item(ast.StringTerm(k.String()), ast.ArrayTerm(byKey[k]...)))
	}
	return set.term(), ast.ObjectTerm(items...), ast.ArrayTerm(found...)
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

func stringSetTerm(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.SetTerm(ts...)
}
