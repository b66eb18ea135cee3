// Package jsonscan reads the few fields admission needs out of JSON in one
// pass, validating what it skips, without encoding/json's reflection and
// repeated validation passes.
//
// It is a fast path only: on anything it is not certain to read exactly as
// encoding/json would — invalid JSON, escapes or invalid UTF-8 in a value it
// returns, a key that differs from a wanted one only in case, a repeated
// wanted key, an unexpected type or null, deep nesting — the Scanner fails,
// and the caller decodes the same bytes with encoding/json, which then
// decides (and words any error) as it always did.
package jsonscan

import (
	"bytes"
	"unicode/utf8"
)

// maxDepth bounds nesting; deeper input is left to encoding/json (whose own
// limit is 10,000).
const maxDepth = 200

// Scanner reads one JSON document. The zero value is not usable; use New.
type Scanner struct {
	data   []byte
	pos    int
	depth  int
	failed bool
}

// New returns a Scanner over data.
func New(data []byte) *Scanner { return &Scanner{data: data} }

// Failed reports whether the input was anything the fast path does not read.
func (s *Scanner) Failed() bool { return s.failed }

// Fail marks the scan failed (callers use it for values of the wrong type).
func (s *Scanner) Fail() { s.failed = true }

// End checks that only whitespace follows the value read.
func (s *Scanner) End() bool {
	s.ws()
	if s.pos != len(s.data) {
		s.failed = true
	}
	return !s.failed
}

func (s *Scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *Scanner) peek() byte {
	s.ws()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

// IsNull consumes a null and reports whether there was one.
func (s *Scanner) IsNull() bool {
	if s.failed || s.peek() != 'n' {
		return false
	}
	if !bytes.HasPrefix(s.data[s.pos:], []byte("null")) {
		s.failed = true
		return false
	}
	s.pos += 4
	return true
}

// Object reads an object, calling field for each key with the scanner at
// its value; field must read or Skip the value. keys are the names the
// caller's encoding/json type declares: a key that differs from one of them
// only in case (which encoding/json would match) or a non-ASCII key fails
// the scan, so field only sees exact names (and unknown ones). A value that
// is not an object fails too.
func (s *Scanner) Object(keys []string, field func(key []byte)) {
	s.object(keys, field, false)
}

// object is Object; skipping accepts any valid key, escaped or not (the
// value is skipped, so the key is never used).
func (s *Scanner) object(keys []string, field func(key []byte), skipping bool) {
	if s.failed {
		return
	}
	if s.peek() != '{' || s.depth >= maxDepth {
		s.failed = true
		return
	}
	s.depth++
	s.pos++
	if s.peek() == '}' {
		s.pos++
		s.depth--
		return
	}
	for !s.failed {
		key, escaped, ok := s.rawString()
		if !ok {
			s.failed = true
			return
		}
		if !skipping && (escaped || !utf8.Valid(key) || keys != nil && foldConflict(key, keys)) {
			s.failed = true
			return
		}
		if s.peek() != ':' {
			s.failed = true
			return
		}
		s.pos++
		field(key)
		if s.failed {
			return
		}
		switch s.peek() {
		case ',':
			s.pos++
			s.ws()
		case '}':
			s.pos++
			s.depth--
			return
		default:
			s.failed = true
			return
		}
	}
}

// Array reads an array, calling elem with the scanner at each element; elem
// must read or Skip it. A value that is not an array fails the scan.
func (s *Scanner) Array(elem func()) {
	if s.failed {
		return
	}
	if s.peek() != '[' || s.depth >= maxDepth {
		s.failed = true
		return
	}
	s.depth++
	s.pos++
	if s.peek() == ']' {
		s.pos++
		s.depth--
		return
	}
	for !s.failed {
		elem()
		if s.failed {
			return
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return
		default:
			s.failed = true
			return
		}
	}
}

// Bytes reads a string as its bytes, which alias the input; a value that is
// not a string without escapes, in valid UTF-8, fails the scan.
func (s *Scanner) Bytes() []byte {
	if s.failed {
		return nil
	}
	if s.peek() != '"' {
		s.failed = true
		return nil
	}
	b, escaped, ok := s.rawString()
	if !ok || escaped || !utf8.Valid(b) {
		s.failed = true
		return nil
	}
	return b
}

// String is Bytes as a string.
func (s *Scanner) String() string {
	return string(s.Bytes())
}

// Bool reads true or false.
func (s *Scanner) Bool() bool {
	switch s.peek(); {
	case s.failed:
	case bytes.HasPrefix(s.data[s.pos:], []byte("true")):
		s.pos += 4
		return true
	case bytes.HasPrefix(s.data[s.pos:], []byte("false")):
		s.pos += 5
	default:
		s.failed = true
	}
	return false
}

// Raw skips a value, validating it, and returns its bytes (aliasing the
// input).
func (s *Scanner) Raw() []byte {
	s.ws()
	start := s.pos
	s.Skip()
	if s.failed {
		return nil
	}
	return s.data[start:s.pos:s.pos]
}

// Skip reads any value, validating it as encoding/json would.
func (s *Scanner) Skip() {
	if s.failed {
		return
	}
	switch c := s.peek(); {
	case c == '{':
		s.skipObject()
	case c == '[':
		s.skipArray()
	case c == '"':
		if _, _, ok := s.rawString(); !ok {
			s.failed = true
		}
	case c == 't':
		s.literal("true")
	case c == 'f':
		s.literal("false")
	case c == 'n':
		s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		s.number()
	default:
		s.failed = true
	}
}

// skipObject is object(nil, Skip, true) without a call through a closure
// per member: most of a pod is skipped.
func (s *Scanner) skipObject() {
	if s.depth >= maxDepth {
		s.failed = true
		return
	}
	s.depth++
	s.pos++
	if s.peek() == '}' {
		s.pos++
		s.depth--
		return
	}
	for !s.failed {
		if _, _, ok := s.rawString(); !ok || s.peek() != ':' {
			s.failed = true
			return
		}
		s.pos++
		s.Skip()
		if s.failed {
			return
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			return
		default:
			s.failed = true
		}
	}
}

func (s *Scanner) skipArray() {
	if s.depth >= maxDepth {
		s.failed = true
		return
	}
	s.depth++
	s.pos++
	if s.peek() == ']' {
		s.pos++
		s.depth--
		return
	}
	for !s.failed {
		s.Skip()
		if s.failed {
			return
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return
		default:
			s.failed = true
		}
	}
}

// Fields reads an object of the fields keys names (at most 64), calling
// field with the index of each key present, the scanner at its value;
// field must read it. Unknown keys are skipped; a key given twice fails the
// scan (encoding/json would merge or overwrite), as does anything Object
// fails on.
func (s *Scanner) Fields(keys []string, field func(i int)) {
	var seen uint64
	s.Object(keys, func(key []byte) {
		for i, k := range keys {
			if string(key) == k {
				if seen&(1<<i) != 0 {
					s.failed = true
					return
				}
				seen |= 1 << i
				field(i)
				return
			}
		}
		s.Skip()
	})
}

// Strings reads an array of strings; null gives nil, [] an empty slice, as
// encoding/json decodes them.
func (s *Scanner) Strings() []string {
	if s.IsNull() {
		return nil
	}
	out := []string{}
	s.Array(func() { out = append(out, s.String()) })
	return out
}

// Try runs read at the current position; if read fails the scan, the
// scanner is put back where it was, not failed, and Try returns false, so
// the caller can read the same value another way (Skip or Raw it).
func (s *Scanner) Try(read func()) bool {
	if s.failed {
		return false
	}
	pos, depth := s.pos, s.depth
	read()
	if s.failed {
		s.pos, s.depth, s.failed = pos, depth, false
		return false
	}
	return true
}

// RawTry is Raw that also tries read on the value (see Try); read reports
// through ok whether it read it.
func (s *Scanner) RawTry(read func()) (raw []byte, ok bool) {
	s.ws()
	start := s.pos
	if !s.Try(read) {
		return s.Raw(), false
	}
	return s.data[start:s.pos:s.pos], true
}
