package webhook_test

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time the process has used (user and system, the
// garbage collector's included).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op: on a machine shared with other work, ns/op
// counts the time other processes held the cores, while the CPU time this
// process spent per operation barely depends on them.
func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(processCPU()-since)/float64(b.N), "cpu-ns/op")
}
