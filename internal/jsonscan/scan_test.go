package jsonscan

import (
	"encoding/binary"
	"encoding/json"
	"testing"
)

// TestPlain8: the eight-byte test agrees with the byte table for every byte
// in every position.
func TestPlain8(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			want := true
			for _, x := range b {
				want = want && plain[x]
			}
			if got := plain8(binary.LittleEndian.Uint64(b)); got != want {
				t.Errorf("byte %#x at %d: plain8 %v, table %v", c, pos, got, want)
			}
		}
	}
}

// FuzzSkip: what Skip accepts, encoding/json accepts.
func FuzzSkip(f *testing.F) {
	for _, s := range []string{`{"a":[1,"b\n\u00e9",true,null,{"c":-1.5e-3}]}`, `"abcdefghijklmnop\"q"`, `[0.1e+5]`, `"\x1f"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := New(b)
		s.Skip()
		if s.End() && !json.Valid(b) {
			t.Errorf("Skip accepts %q, which encoding/json refuses", b)
		}
	})
}
