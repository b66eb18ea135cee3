package strictyaml

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

type inner struct {
	Count int       `json:"count"`
	Ratio float64   `json:"ratio"`
	On    bool      `json:"on"`
	At    time.Time `json:"at"` // decodes itself: not walked
}

type outer struct {
	Name  string            `json:"name"`
	Items []inner           `json:"items"`
	By    map[string]*inner `json:"by"`
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name, doc string
		scalars   bool
		want      string // "" : no error; else "line path: message part"
	}{
		{"valid", "name: a\nitems: [{count: 1, ratio: 2, on: true, at: 2026-01-01T00:00:00Z}]\nby: {x: {count: 3}}\n", true, ""},
		{"suggestion", "name: a\nitemz: []\n", true, `2 itemz: unknown field (did you mean "items"?)`},
		{"short list of fields", "name: a\nby: {x: {zzzzzz: 1}}\n", true, "2 by[x].zzzzzz: unknown field, expected one of at, count, on, ratio"},
		{"list expected", "items: {count: 1}\n", true, "1 items: expected a list, got an object"},
		{"scalar type checked", "items: [{count: many}]\n", true, `1 items[0].count: expected an integer, got the string "many"`},
		{"scalar type not checked", "items: [{count: many}]\n", false, ""},
		{"string expected", "name: 1.0\n", true, `1 name: expected a string, got the number 1.0 (quote it: "1.0")`},
		{"int is a number", "items: [{ratio: 1}]\n", true, ""},
		{"object expected even without scalar checks", "items: [3]\n", false, "1 items[0]: expected an object"},
		{"duplicate", "name: a\nname: b\n", false, "2 name: duplicate field"},
		{"null anywhere", "name: ~\nitems: ~\nby: {x: ~}\n", true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(c.doc), &n); err != nil {
				t.Fatal(err)
			}
			res := Check(n.Content[0], reflect.TypeOf(outer{}), "", Options{Scalars: c.scalars})
			if c.want == "" {
				if len(res.Errors) > 0 {
					t.Errorf("errors %v", res.Errors)
				}
				return
			}
			if len(res.Errors) != 1 {
				t.Fatalf("errors %v, want one", res.Errors)
			}
			e := res.Errors[0]
			if got := strings.Join([]string{strconv.Itoa(e.Line), e.Path + ": " + e.Msg}, " "); !strings.HasPrefix(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
