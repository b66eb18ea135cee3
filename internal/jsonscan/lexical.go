package jsonscan

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// The lexical layer: literals, numbers, strings and the checks that make
// the scanner give up where encoding/json might read a document differently.

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
