package rego

import (
	"context"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"
)

func TestZZProf(t *testing.T) {
	if os.Getenv("EXP") == "" {
		t.Skip()
	}
	n, _ := strconv.Atoi(os.Getenv("EXP"))
	e := expEngine(t, n)
	in := expInput()
	f, _ := os.Create("/tmp/cpu-zz.out")
	pprof.StartCPUProfile(f)
	for i := 0; i < 40000000/(n*100+1000); i++ {
		e.Eval(context.Background(), in)
	}
	pprof.StopCPUProfile()
	f.Close()
}
