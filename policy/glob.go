package policy

import (
	"fmt"
	"regexp"
	"strings"
)

// Glob is a compiled imageName or whiteList pattern: * matches any run of
// characters (slashes included), ? one character, [abc] and [!abc] a class.
// A pattern without metacharacters matches only itself.
type Glob struct {
	pattern string
	re      *regexp.Regexp // nil for a literal pattern
}

// IsGlob reports whether a pattern has glob metacharacters.
func IsGlob(pattern string) bool {
	return strings.ContainsAny(pattern, "*?[")
}

// CompileGlob compiles a pattern once so that matching on the request path
// compiles nothing.
func CompileGlob(pattern string) (*Glob, error) {
	if !IsGlob(pattern) {
		return &Glob{pattern: pattern}, nil
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			end := strings.IndexByte(pattern[i+1:], ']')
			if end < 0 {
				return nil, fmt.Errorf("pattern %q: unterminated [", pattern)
			}
			class := pattern[i+1 : i+1+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			if class == "" || class == "^" {
				return nil, fmt.Errorf("pattern %q: empty character class", pattern)
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += end + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %v", pattern, err)
	}
	return &Glob{pattern: pattern, re: re}, nil
}

// Match reports whether s matches the pattern.
func (g *Glob) Match(s string) bool {
	if g.re == nil {
		return s == g.pattern
	}
	return g.re.MatchString(s)
}

// String returns the pattern.
func (g *Glob) String() string { return g.pattern }
