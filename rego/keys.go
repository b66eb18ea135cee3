package rego

import (
	"strings"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/policy"
	"github.com/open-policy-agent/opa/v1/ast"
)

// lookups holds the index's key → strategy-id sets (built by build.rego) so
// that the engine can resolve an image's keys in Go before evaluation: a Go
// map lookup costs a few nanoseconds, a Rego iteration over every key of the
// index grows with the policy set. Which strategies a key selects, and how
// the sets combine, stay in Rego. Keys are structs where an image has many (findings), so a lookup
// allocates nothing.
type lookups struct {
	criteria  map[string]*ast.Term // "*", "u", "m"
	findings  map[findingKey]*findingEntry
	names     map[string]*ast.Term
	tags      map[string]*ast.Term
	nameGlobs []globSet
	tagGlobs  []globSet
	labelKey  map[string]*ast.Term            // label key -> ids (presence)
	labelKV   map[string]map[string]*ast.Term // label key -> value -> ids
	// The strategies without imageName (label) entries: what an image (a
	// pod) no key matches is targeted by.
	nameAny, labelAny *ast.Term
	// Per namespace named by a scope or policy, the strategies that apply
	// and the attestors required there; the defaults for every other one.
	applicable, required               map[string]*ast.Term
	applicableDefault, requiredDefault *ast.Term
	// The signature policies in force per namespace (and elsewhere), and
	// those an image's name selects through their images globs (with those
	// without globs): the signature gate's counterparts of applicable and
	// names.
	policies                        map[string]*ast.Term
	policiesDefault, policyImageAny *ast.Term
	policyImages                    map[string]*ast.Term
	policyImageGlobs                []globSet
}

// namespace returns the strategies that apply in ns and the attestors
// required there.
func (l *lookups) namespace(ns string) (applicable, required *ast.Term) {
	applicable, required = l.applicableDefault, l.requiredDefault
	if t, ok := l.applicable[ns]; ok {
		applicable = t
	}
	if t, ok := l.required[ns]; ok {
		required = t
	}
	return applicable, required
}

// policyIDs returns the signature policies an image's names select.
func (l *lookups) policyIDs(names []string) *ast.Term {
	var set idSet
	for _, n := range names {
		if ids, ok := l.policyImages[n]; ok {
			set.add(ids)
		}
	}
	for i := range l.policyImageGlobs {
		g := &l.policyImageGlobs[i]
		for _, n := range names {
			if g.match(n) {
				set.add(g.ids)
				break
			}
		}
	}
	return set.termOr(l.policyImageAny)
}

// namespacePolicies returns the signature policies in force in ns.
func (l *lookups) namespacePolicies(ns string) *ast.Term {
	if t, ok := l.policies[ns]; ok {
		return t
	}
	return l.policiesDefault
}

// findingEntry is one finding key of the index: the key as the index spells
// it (reused in every request's input) and the strategies it selects.
type findingEntry struct {
	key, ids *ast.Term
}

type globSet struct {
	glob *policy.Glob
	ids  *ast.Term
	// The literal text before the first and after the last metacharacter:
	// comparing them rules most patterns out for a fraction of a regexp
	// match.
	prefix, suffix string
}

func (g *globSet) match(s string) bool {
	return len(s) >= len(g.prefix)+len(g.suffix) && strings.HasPrefix(s, g.prefix) && strings.HasSuffix(s, g.suffix) && g.glob.Match(s)
}

type findingKey struct {
	byID            bool // "i:" (item id) rather than "l:" (level)
	category, value string
	class           string // "*" for any class
}

func newLookups(index ast.Object, snap *policy.Snapshot) lookups {
	l := lookups{
		criteria: map[string]*ast.Term{}, findings: map[findingKey]*findingEntry{},
		names: map[string]*ast.Term{}, tags: map[string]*ast.Term{},
		labelKey: map[string]*ast.Term{}, labelKV: map[string]map[string]*ast.Term{},
		applicable: map[string]*ast.Term{}, required: map[string]*ast.Term{},
		applicableDefault: orEmptySet(index.Get(ast.StringTerm("applicableDefault"))),
		requiredDefault:   orEmptySet(index.Get(ast.StringTerm("requiredDefault"))),
		nameAny:           orEmptySet(index.Get(ast.StringTerm("nameAny"))),
		labelAny:          orEmptySet(index.Get(ast.StringTerm("labelAny"))),
		policies:          map[string]*ast.Term{}, policyImages: map[string]*ast.Term{},
		policiesDefault: orEmptySet(index.Get(ast.StringTerm("policiesDefault"))),
		policyImageAny:  orEmptySet(index.Get(ast.StringTerm("policyImagesAny"))),
	}
	each(index, "policies", func(ns string, ids *ast.Term) { l.policies[ns] = ids })
	each(index, "policyImages", func(k string, ids *ast.Term) { l.policyImages[k] = ids })
	each(index, "policyImageGlobs", func(k string, ids *ast.Term) {
		l.policyImageGlobs = append(l.policyImageGlobs, compiled(snap, k, ids))
	})
	each(index, "applicable", func(ns string, ids *ast.Term) { l.applicable[ns] = ids })
	each(index, "required", func(ns string, atts *ast.Term) { l.required[ns] = atts })
	each(index, "criteria", func(k string, ids *ast.Term) {
		if fk, ok := parseFindingKey(k); ok {
			l.findings[fk] = &findingEntry{key: ast.StringTerm(k), ids: ids}
		} else {
			l.criteria[k] = ids
		}
	})
	each(index, "names", func(k string, ids *ast.Term) { l.names[strings.TrimPrefix(k, "n:")] = ids })
	each(index, "tags", func(k string, ids *ast.Term) { l.tags[strings.TrimPrefix(k, "t:")] = ids })
	each(index, "nameGlobs", func(k string, ids *ast.Term) { l.nameGlobs = append(l.nameGlobs, compiled(snap, k, ids)) })
	each(index, "tagGlobs", func(k string, ids *ast.Term) { l.tagGlobs = append(l.tagGlobs, compiled(snap, k, ids)) })
	each(index, "labelKey", func(k string, ids *ast.Term) { l.labelKey[k] = ids })
	each(index, "labelKV", func(k string, values *ast.Term) {
		m := map[string]*ast.Term{}
		if o, ok := values.Value.(ast.Object); ok {
			o.Foreach(func(v, ids *ast.Term) {
				if s, ok := v.Value.(ast.String); ok {
					m[string(s)] = ids
				}
			})
		}
		l.labelKV[k] = m
	})
	return l
}

// labelIDs resolves the pod's labels to the strategies they target: those
// with a label entry they meet (key:value, or key for presence) and those
// without label entries.
func (l *lookups) labelIDs(labels map[string]string) *ast.Term {
	var set idSet
	for k, v := range labels {
		if ids, ok := l.labelKey[k]; ok {
			set.add(ids)
		}
		if ids, ok := l.labelKV[k][v]; ok {
			set.add(ids)
		}
	}
	return set.termOr(l.labelAny)
}

func compiled(snap *policy.Snapshot, pattern string, ids *ast.Term) globSet {
	g, ok := snap.Glob(pattern)
	if !ok {
		g, _ = policy.CompileGlob(pattern) // every pattern of a snapshot was compiled with it
	}
	gs := globSet{glob: g, ids: ids, prefix: pattern}
	if i := strings.IndexAny(pattern, "*?["); i >= 0 {
		gs.prefix = pattern[:i]
		gs.suffix = pattern[strings.LastIndexAny(pattern, "*?]")+1:]
	}
	return gs
}

func parseFindingKey(k string) (findingKey, bool) {
	var fk findingKey
	switch {
	case strings.HasPrefix(k, "l:"):
	case strings.HasPrefix(k, "i:"):
		fk.byID = true
	default:
		return fk, false
	}
	cat, rest, ok := strings.Cut(k[2:], "|")
	i := strings.LastIndexByte(rest, '|')
	if !ok || i < 0 {
		return fk, false
	}
	fk.category, fk.value, fk.class = cat, rest[:i], rest[i+1:]
	return fk, true
}

func each(index ast.Object, field string, f func(string, *ast.Term)) {
	t := index.Get(ast.StringTerm(field))
	if t == nil {
		return
	}
	if o, ok := t.Value.(ast.Object); ok {
		o.Foreach(func(k, v *ast.Term) {
			if s, ok := k.Value.(ast.String); ok {
				f(string(s), v)
			}
		})
	}
}

// idSet accumulates strategy-id sets, copying only when a second non-empty
// set arrives.
type idSet struct {
	one  *ast.Term
	many ast.Set
}

func (s *idSet) add(ids *ast.Term) {
	set, ok := ids.Value.(ast.Set)
	if !ok || set.Len() == 0 {
		return
	}
	switch {
	case s.many != nil:
		set.Foreach(s.many.Add)
	case s.one == nil:
		s.one = ids
	default:
		s.many = ast.NewSet()
		s.one.Value.(ast.Set).Foreach(s.many.Add)
		set.Foreach(s.many.Add)
	}
}

var emptySet = ast.SetTerm()

func orEmptySet(t *ast.Term) *ast.Term {
	if t == nil {
		return emptySet
	}
	return t
}

// termOr is the accumulated set, or dflt when nothing was added.
func (s *idSet) termOr(dflt *ast.Term) *ast.Term {
	if s.many == nil && s.one == nil {
		return dflt
	}
	return s.term()
}

func (s *idSet) term() *ast.Term {
	switch {
	case s.many != nil:
		return ast.NewTerm(s.many)
	case s.one != nil:
		return s.one
	}
	return emptySet
}

// findingsOf visits the keys of each finding that the index knows.
// Categories other than Vul have no class.
func (l *lookups) findingsOf(fs []facts.Finding, visit func(entry *findingEntry, finding int)) {
	if len(l.findings) == 0 {
		return
	}
	for i := range fs {
		f := &fs[i]
		class := "*"
		if f.Category == facts.Vul {
			class = f.Class
		}
		keys := [4]findingKey{
			{false, f.Category, f.Level, "*"},
			{true, f.Category, f.ID, "*"},
			{false, f.Category, f.Level, class},
			{true, f.Category, f.ID, class},
		}
		n := 4
		if class == "*" {
			n = 2
		}
		for _, k := range keys[:n] {
			if fe, ok := l.findings[k]; ok {
				visit(fe, i)
			}
		}
	}
}
