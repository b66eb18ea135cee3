package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// maxStemBytes bounds a file name's stem (without ".yaml"), well under the
// 255 bytes file systems allow.
const maxStemBytes = 200

// fileName is the file an object created through the API gets in the
// policy directory. The mapping is injective, so two objects never share a
// file name:
//
//   - letters, digits, '-' and '.' are kept; every other byte becomes
//     "_xx" (its hex value), so "prod:signed" is prod_3asigned and
//     "prod_signed" is prod_5fsigned;
//   - the stem is "<kind>-<escaped name>", so no file is hidden (".ns1" is
//     attestor-.ns1.yaml, "." and ".." keep their dots);
//   - a name that is already "<kind>-<digits>" (the API's own
//     "opastrategy-<StrategyId>") is the stem as it is, and a name of
//     digits only has its first digit escaped, so "opastrategy-7" is
//     opastrategy-7.yaml and "7" is opastrategy-_37.yaml;
//   - a stem over maxStemBytes is cut and ends in "~" and a SHA-256 of the
//     name ('~' is never kept by the escaping).
//
// Files written under earlier names (opastrategy-opastrategy-7.yaml) still
// load: objects are found by what the files hold, not by their names.
func fileName(r Ref) string {
	prefix := strings.ToLower(r.Kind) + "-"
	var stem string
	if rest, ok := strings.CutPrefix(r.Name, prefix); ok && allDigits(rest) {
		stem = r.Name
	} else {
		stem = prefix + escapeName(r.Name)
	}
	if len(stem) > maxStemBytes {
		cut := maxStemBytes - 1 - 32
		// Do not split an escape.
		if i := strings.LastIndexByte(stem[:cut], '_'); i >= cut-2 {
			cut = i
		}
		sum := sha256.Sum256([]byte(r.Name))
		stem = stem[:cut] + "~" + hex.EncodeToString(sum[:16])
	}
	return stem + ".yaml"
}

func escapeName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		keep := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
		if i == 0 && allDigits(name) {
			keep = false
		}
		if keep {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String()
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
