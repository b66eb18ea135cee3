package harness

import (
	"net"
	"testing"
)

// TestFreePortBelowEphemeralRange: ports are distinct, bindable and outside
// the range port-0 listeners and outgoing connections take theirs from.
func TestFreePortBelowEphemeralRange(t *testing.T) {
	lo := ephemeralLow()
	if lo <= portFloor+1000 {
		t.Skipf("ephemeral range starts at %d: no room below it", lo)
	}
	seen := map[int]bool{}
	for range 100 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if p < portFloor || p >= lo {
			t.Fatalf("port %d outside [%d, %d)", p, portFloor, lo)
		}
		l, err := net.Listen("tcp", hostPort(p))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		l.Close()
	}
}
