package rego

import (
	"encoding/json"
	"strconv"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/workload"
	"github.com/open-policy-agent/opa/v1/ast"
)

// Keys of the input document, shared so a request allocates only values.
var (
	kNamespace    = ast.StringTerm("namespace")
	kLabels       = ast.StringTerm("labels")
	kNow          = ast.StringTerm("nowNs")
	kImages       = ast.StringTerm("images")
	kRef          = ast.StringTerm("ref")
	kNames        = ast.StringTerm("names")
	kTag          = ast.StringTerm("tag")
	kInvalid      = ast.StringTerm("invalid")
	kAttestors    = ast.StringTerm("attestors")
	kErrors       = ast.StringTerm("errors")
	kUnverifiable = ast.StringTerm("unverifiable")
	kScanned      = ast.StringTerm("scanned")
	kScannedAt    = ast.StringTerm("scannedAtNs")
	kMalicious    = ast.StringTerm("malicious")
	kFindings     = ast.StringTerm("findings")
	kCategory     = ast.StringTerm("category")
	kID           = ast.StringTerm("id")
	kLevel        = ast.StringTerm("level")
	kClass        = ast.StringTerm("class")
	emptyString   = ast.StringTerm("")
)

// toInput builds the Rego input straight from Go values: no JSON round trip.
func toInput(in Input, nowNs int64) ast.Value {
	imgs := make([]*ast.Term, len(in.Images))
	for i := range in.Images {
		var f *facts.Image
		if i < len(in.Facts) {
			f = in.Facts[i]
		}
		imgs[i] = ast.NewTerm(imageValue(&in.Images[i], f))
	}
	labels := make([][2]*ast.Term, 0, len(in.Labels))
	for k, v := range in.Labels {
		labels = append(labels, ast.Item(ast.StringTerm(k), ast.StringTerm(v)))
	}
	return ast.NewObject(
		ast.Item(kNamespace, ast.StringTerm(in.Namespace)),
		ast.Item(kLabels, ast.NewTerm(ast.NewObject(labels...))),
		ast.Item(kNow, intTerm(nowNs)),
		ast.Item(kImages, ast.ArrayTerm(imgs...)),
	)
}

func imageValue(img *workload.Image, f *facts.Image) ast.Value {
	if f == nil {
		f = &facts.Image{}
	}
	invalid := emptyString
	if img.Err != nil {
		invalid = ast.StringTerm(img.Err.Error())
	}
	names := make([]*ast.Term, len(img.Names))
	for i, n := range img.Names {
		names[i] = ast.StringTerm(n)
	}
	errs := make([][2]*ast.Term, 0, len(f.AttestorErrors))
	for k, v := range f.AttestorErrors {
		errs = append(errs, ast.Item(ast.StringTerm(k), ast.StringTerm(v)))
	}
	scanned, malicious, scannedAt := false, false, int64(0)
	var findings []*ast.Term
	if s := f.Scan; s != nil {
		scanned, malicious = true, s.Malicious
		if !s.ScannedAt.IsZero() {
			scannedAt = s.ScannedAt.UnixNano()
		}
		findings = make([]*ast.Term, len(s.Findings))
		for i, fd := range s.Findings {
			findings[i] = ast.ObjectTerm(
				ast.Item(kCategory, ast.StringTerm(fd.Category)),
				ast.Item(kID, ast.StringTerm(fd.ID)),
				ast.Item(kLevel, ast.StringTerm(fd.Level)),
				ast.Item(kClass, ast.StringTerm(fd.Class)),
			)
		}
	}
	return ast.NewObject(
		ast.Item(kRef, ast.StringTerm(img.Ref)),
		ast.Item(kNames, ast.ArrayTerm(names...)),
		ast.Item(kTag, ast.StringTerm(img.Tag)),
		ast.Item(kInvalid, invalid),
		ast.Item(kAttestors, stringSetTerm(f.Attestors)),
		ast.Item(kErrors, ast.NewTerm(ast.NewObject(errs...))),
		ast.Item(kUnverifiable, stringSetTerm(f.Unverifiable)),
		ast.Item(kScanned, ast.BooleanTerm(scanned)),
		ast.Item(kScannedAt, intTerm(scannedAt)),
		ast.Item(kMalicious, ast.BooleanTerm(malicious)),
		ast.Item(kFindings, ast.ArrayTerm(findings...)),
	)
}

func stringSetTerm(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.SetTerm(ts...)
}

func intTerm(n int64) *ast.Term {
	return ast.NumberTerm(json.Number(strconv.FormatInt(n, 10)))
}
