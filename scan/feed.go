package scan

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// ParseMaliciousFeed reads a feed of known-malicious image digests: one
// digest a line (blank lines and # comments ignored; text after the digest
// is the reason), or JSON: an array of digests, or of {"digest", "reason"}
// objects. It returns digest → reason.
func ParseMaliciousFeed(data []byte) (map[string]string, error) {
	out := map[string]string{}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{') {
		var entries []json.RawMessage
		if trimmed[0] == '{' {
			var wrapped struct {
				Digests []json.RawMessage `json:"digests"`
			}
			if err := json.Unmarshal(trimmed, &wrapped); err != nil {
				return nil, fmt.Errorf("malicious feed: %w", err)
			}
			entries = wrapped.Digests
		} else if err := json.Unmarshal(trimmed, &entries); err != nil {
			return nil, fmt.Errorf("malicious feed: %w", err)
		}
		for i, e := range entries {
			var d string
			var obj struct{ Digest, Reason string }
			if json.Unmarshal(e, &d) != nil {
				if err := json.Unmarshal(e, &obj); err != nil {
					return nil, fmt.Errorf("malicious feed entry %d: expected a digest or {digest, reason}", i)
				}
				d = obj.Digest
			}
			if !digestRE.MatchString(d) {
				return nil, fmt.Errorf("malicious feed entry %d: %q is not a sha256 digest", i, d)
			}
			out[d] = firstNonEmpty(obj.Reason, "listed in a malicious-image feed")
		}
		return out, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		d, reason, _ := strings.Cut(line, " ")
		if !digestRE.MatchString(d) {
			return nil, fmt.Errorf("malicious feed line %d: %q is not a sha256 digest", n, d)
		}
		out[d] = firstNonEmpty(strings.TrimSpace(reason), "listed in a malicious-image feed")
	}
	return out, sc.Err()
}
