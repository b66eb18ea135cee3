package iam

import "strings"

// matcher is a pattern compiled once: "*" matches anything, "?" one byte.
// Patterns without wildcards compare for equality, "prefix*" by prefix, so
// the common shapes never run the general algorithm.
type matcher struct {
	pat  string
	kind matchKind
}

type matchKind uint8

const (
	matchAll matchKind = iota
	matchExact
	matchPrefix
	matchGlob
)

func compileMatcher(pat string) matcher {
	switch {
	case pat == "*":
		return matcher{kind: matchAll}
	case !strings.ContainsAny(pat, "*?"):
		return matcher{pat: pat, kind: matchExact}
	case strings.IndexAny(pat, "*?") == len(pat)-1 && pat[len(pat)-1] == '*':
		return matcher{pat: pat[:len(pat)-1], kind: matchPrefix}
	default:
		return matcher{pat: pat, kind: matchGlob}
	}
}

func (m matcher) match(s string) bool {
	switch m.kind {
	case matchAll:
		return true
	case matchExact:
		return s == m.pat
	case matchPrefix:
		return strings.HasPrefix(s, m.pat)
	default:
		return globMatch(m.pat, s)
	}
}

// globMatch is the linear-time wildcard algorithm: on a mismatch it retries
// from the last star, so no input can make it backtrack exponentially.
func globMatch(pat, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pat) && (pat[p] == '?' || pat[p] == s[i]):
			p++
			i++
		case p < len(pat) && pat[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}

func anyMatch(ms []matcher, s string) bool {
	for _, m := range ms {
		if m.match(s) {
			return true
		}
	}
	return false
}
