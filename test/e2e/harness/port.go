package harness

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on, for a
// process started later to listen on. A port the kernel hands out for
// port 0 is free only until the next port-0 listener or outgoing
// connection takes it (a kube-apiserver started between the pick and the
// listen took one here), so the port is drawn below the kernel's ephemeral
// range, where neither comes from, and never handed out twice by one test
// binary.
func FreePort(t TB) int {
	t.Helper()
	lo := ephemeralLow()
	for i := 0; i < 200 && lo > portFloor+1000; i++ {
		p := portFloor + rand.IntN(lo-portFloor)
		if !claim(p) {
			continue
		}
		if l, err := net.Listen("tcp", hostPort(p)); err == nil {
			l.Close()
			return p
		}
	}
	// Nothing free below the range, or no room there: the kernel's pick.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// portFloor keeps clear of the well-known and registered ports most
// services use.
const portFloor = 10000

var claimed = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// claim reports whether p was not handed out before, and marks it so.
func claim(p int) bool {
	claimed.Lock()
	defer claimed.Unlock()
	if claimed.m[p] {
		return false
	}
	claimed.m[p] = true
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 when it cannot be read).
func ephemeralLow() int {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				lo = v
			}
		}
	}
	return lo
}
