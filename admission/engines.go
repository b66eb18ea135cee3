package admission

import (
	"sync/atomic"

	"github.com/imagegate/imagegate/rego"
)

// Engines holds the engine in force and swaps it atomically when policies
// change: requests in flight finish with the engine they started with.
type Engines struct {
	current atomic.Pointer[rego.Engine]
}

var _ EngineProvider = (*Engines)(nil)

// Engine returns the engine in force, or nil before the first snapshot.
func (e *Engines) Engine() *rego.Engine { return e.current.Load() }

// Swap puts next in force.
func (e *Engines) Swap(next *rego.Engine) { e.current.Store(next) }

// Ready reports whether a snapshot has been loaded.
func (e *Engines) Ready() bool { return e.current.Load() != nil }
