// Package harness starts the real components of imagegate's end-to-end
// tests on 127.0.0.1: etcd, kube-apiserver, the docker-registry of the
// distribution project, the cosign CLI and the imagegate binary itself.
//
// Every Start function takes a TB, cleans up after itself with TB.Cleanup,
// writes the component's output to a log file in a temporary directory and
// prints the end of that log when the test has failed.
//
// Tools are found through the environment variables KUBE_APISERVER, ETCD,
// REGISTRY and COSIGN (scripts/e2e-tools.sh writes them to an env file that
// test/e2e/run.sh sources), then through that env file in its default
// place, then on PATH.
package harness

import (
	"fmt"
	"os"
	"sync"
)

// TB is the part of testing.TB the harness uses. *testing.T and *testing.B
// satisfy it, and so does *Owner, which lets a fixture outlive a single test.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
	Name() string
}

// Owner is a TB for fixtures shared by every test of a package: their
// cleanups run when Close is called (from TestMain, after m.Run). Fatalf
// panics with a *FatalError, which Run turns back into an error.
type Owner struct {
	name string

	mu       sync.Mutex
	cleanups []func()
	dirs     []string
	failed   bool
}

// FatalError is what Owner.Fatalf panics with.
type FatalError struct{ Msg string }

func (e *FatalError) Error() string { return e.Msg }

// NewOwner returns an Owner whose log lines are prefixed with name.
func NewOwner(name string) *Owner { return &Owner{name: name} }

// Helper implements TB.
func (o *Owner) Helper() {}

// Name implements TB.
func (o *Owner) Name() string { return o.name }

// Logf implements TB: it writes to stderr.
func (o *Owner) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", o.name, fmt.Sprintf(format, args...))
}

// Fatalf implements TB: it logs, marks the owner failed and panics with a
// *FatalError; call the code that may fail through Run.
func (o *Owner) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	o.Logf("%s", msg)
	o.SetFailed()
	panic(&FatalError{Msg: msg})
}

// Cleanup implements TB: f runs in Close, last registered first.
func (o *Owner) Cleanup(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cleanups = append(o.cleanups, f)
}

// TempDir implements TB: a new directory removed by Close.
func (o *Owner) TempDir() string {
	dir, err := os.MkdirTemp("", "imagegate-e2e-")
	if err != nil {
		o.Fatalf("temp dir: %v", err)
	}
	o.mu.Lock()
	o.dirs = append(o.dirs, dir)
	o.mu.Unlock()
	return dir
}

// Failed implements TB.
func (o *Owner) Failed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failed
}

// SetFailed marks the owner failed, so that Close shows component logs.
func (o *Owner) SetFailed() {
	o.mu.Lock()
	o.failed = true
	o.mu.Unlock()
}

// Run calls f and returns the error of a Fatalf inside it.
func (o *Owner) Run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(*FatalError)
			if !ok {
				panic(r)
			}
			err = fe
		}
	}()
	f()
	return nil
}

// Close runs the cleanups, last registered first, then removes the
// temporary directories, unless the owner failed or IMAGEGATE_E2E_KEEP=1.
func (o *Owner) Close() {
	o.mu.Lock()
	cleanups, dirs := o.cleanups, o.dirs
	o.cleanups, o.dirs = nil, nil
	o.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		func() {
			defer func() {
				if r := recover(); r != nil {
					o.Logf("cleanup: %v", r)
				}
			}()
			cleanups[i]()
		}()
	}
	keep := os.Getenv("IMAGEGATE_E2E_KEEP") == "1"
	for _, d := range dirs {
		if keep || o.Failed() {
			o.Logf("kept %s (logs of the shared fixtures are there)", d)
			continue
		}
		os.RemoveAll(d)
	}
}
