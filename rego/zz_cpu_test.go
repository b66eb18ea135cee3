package rego

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZCPU(t *testing.T) {
	if os.Getenv("CPU") == "" {
		t.Skip()
	}
	for _, n := range []int{1, 10, 100, 1000} {
		e := expEngine(t, n)
		in := expInput()
		iters := 4000000 / (n*10 + 100)
		for i := 0; i < iters/10; i++ {
			e.Eval(context.Background(), in)
		}
		c0, w0 := cpuNow(), time.Now()
		for i := 0; i < iters; i++ {
			e.Eval(context.Background(), in)
		}
		c1, w1 := cpuNow(), time.Now()
		fmt.Printf("n=%d cpu/op=%v wall/op=%v\n", n, (c1-c0)/time.Duration(iters), w1.Sub(w0)/time.Duration(iters))
	}
}
