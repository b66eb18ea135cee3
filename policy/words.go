package policy

import (
	"strings"

	"github.com/imagegate/imagegate/internal/strictyaml"
	"go.yaml.in/yaml/v3"
)

// wordField is a numeric field of the management API that policy files and
// custom resources may also write as a word (ruleAction: block,
// allNamespace: true). The decoder turns the word into its number before the
// object is built, so everything past decoding (validation, the decision,
// the management API's answers) sees the numbers the API documents.
type wordField struct {
	words  map[string]string // word -> number, as YAML scalars
	tag    string            // YAML tag of the words: !!str or !!bool
	accept string            // the accepted values, for messages
}

// Accepted spellings of the numeric fields, keyed by Go struct and JSON name.
var wordFields = map[string]wordField{
	"OpaStrategySpec.ruleAction": {
		words:  map[string]string{"alert": "1", "block": "2", "allow": "3"},
		tag:    "!!str",
		accept: RuleActionValues,
	},
	"OpaScope.allNamespace": {
		words:  map[string]string{"false": "0", "true": "1"},
		tag:    "!!bool",
		accept: AllNamespaceValues,
	},
}

// The accepted values of ruleAction and allNamespace, as messages list them.
const (
	RuleActionValues   = "alert, block, allow (or 1, 2, 3)"
	AllNamespaceValues = "true, false (or 1, 0)"
)

// ActionName is the word for a ruleAction number ("" for none).
func ActionName(action int) string {
	switch action {
	case ActionAlert:
		return "alert"
	case ActionBlock:
		return "block"
	case ActionAllow:
		return "allow"
	}
	return ""
}

// rewrite checks a word field's node and rewrites a word to its number in
// place, so that decoding the tree yields the number; it returns the problem,
// if any.
func (f wordField) rewrite(n *yaml.Node) string {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case strictyaml.IsNull(n):
	case n.Kind == yaml.ScalarNode && n.Tag == "!!int":
		// Range is validation's job, which names the accepted values too.
	case n.Kind == yaml.ScalarNode && n.Tag == f.tag && f.words[strings.ToLower(n.Value)] != "":
		n.Value, n.Tag, n.Style = f.words[strings.ToLower(n.Value)], "!!int", 0
	default:
		return "expected one of " + f.accept + ", got " + strictyaml.Describe(n)
	}
	return ""
}
