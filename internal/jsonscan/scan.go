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
	"encoding/binary"
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

func (s *Scanner) literal(lit string) {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(lit)) {
		s.failed = true
		return
	}
	s.pos += len(lit)
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *Scanner) number() {
	d, i := s.data, s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = digits(d, i)
	default:
		s.failed = true
		return
	}
	if i < len(d) && d[i] == '.' {
		j := digits(d, i+1)
		if j == i+1 {
			s.failed = true
			return
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := digits(d, i)
		if j == i {
			s.failed = true
			return
		}
		i = j
	}
	s.pos = i
}

func digits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

// rawString reads a string at the current position (after whitespace) and
// returns its contents as written; escaped says they contain escapes (so
// they are not the string's value). ok is false for an invalid string.
func (s *Scanner) rawString() (b []byte, escaped, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	d := s.data
	start := s.pos + 1
	for i := start; i < len(d); i++ {
		for i+8 <= len(d) && plain8(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		for i < len(d) && plain[d[i]] {
			i++
		}
		if i == len(d) {
			break
		}
		switch c := d[i]; {
		case c == '"':
			s.pos = i + 1
			return d[start:i], escaped, true
		case c == '\\':
			if !validEscape(d, i) {
				s.failed = true
				return nil, false, false
			}
			escaped = true
			if d[i+1] == 'u' {
				i += 5
			} else {
				i++
			}
		case c < 0x20:
			s.failed = true
			return nil, false, false
		}
	}
	s.failed = true
	return nil, false, false
}

// plain8 reports whether none of the eight bytes in w is a quote, a
// backslash or a control character, eight at a time (a pod's JSON is mostly
// string contents).
func plain8(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// A byte of x is below n (n ≤ 128) → its high bit in (x - n·ones) &^ x.
	less := (w - 0x20*ones) &^ w
	quote := w ^ ('"' * ones)
	backslash := w ^ ('\\' * ones)
	zero := func(x uint64) uint64 { return (x - ones) &^ x }
	return (less|zero(quote)|zero(backslash))&highs == 0
}

// plain marks the bytes a string holds as they are: not a quote, a
// backslash or a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func validEscape(d []byte, i int) bool {
	if i+1 >= len(d) {
		return false
	}
	switch d[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return true
	case 'u':
		if i+5 >= len(d) {
			return false
		}
		for _, h := range d[i+2 : i+6] {
			if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
				return false
			}
		}
		return true
	}
	return false
}

// foldConflict reports whether key is not one of keys but encoding/json
// could still match it to one (a different case; non-ASCII keys can fold
// onto ASCII ones, such as the Kelvin sign onto k).
func foldConflict(key []byte, keys []string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	for _, k := range keys {
		if string(key) == k {
			return false
		}
	}
	for _, k := range keys {
		if len(k) == len(key) && bytes.EqualFold(key, []byte(k)) {
			return true
		}
	}
	return false
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
