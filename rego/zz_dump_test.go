package rego

import (
	"os"
	"testing"

	"github.com/open-policy-agent/opa/v1/ir"
)

func TestZZDump(t *testing.T) {
	name := os.Getenv("DUMP")
	if name == "" {
		t.Skip()
	}
	p, _ := decisionPlan()
	ir.Pretty(os.Stdout, p.funcs["g0.data.imagegate.decision."+name].fn)
}
