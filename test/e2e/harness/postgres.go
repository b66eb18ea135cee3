package harness

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// EnvPostgresBinDir names the directory of initdb and postgres (Debian:
// /usr/lib/postgresql/<version>/bin, which is not on PATH).
const EnvPostgresBinDir = "PG_BINDIR"

// PostgresBinDir is $PG_BINDIR (or the tools env file's), else the newest
// /usr/lib/postgresql/<version>/bin; "" when there is none.
func PostgresBinDir() string {
	if d := os.Getenv(EnvPostgresBinDir); d != "" {
		return d
	}
	if d := readEnvFile()[EnvPostgresBinDir]; d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

// Postgres is a PostgreSQL server on 127.0.0.1 with a throwaway data
// directory, run as the postgres user when the tests run as root (initdb
// and postgres refuse root).
type Postgres struct {
	*Process
	Port    int
	bin     string
	dataDir string
	logDir  string
	cred    *syscall.Credential
}

// StartPostgres runs initdb and the server, and waits until it accepts
// connections; a cleanup stops it.
func StartPostgres(t TB) *Postgres {
	t.Helper()
	bin := PostgresBinDir()
	if bin == "" {
		t.Fatalf("PostgreSQL not found: set %s, or run scripts/e2e-tools.sh", EnvPostgresBinDir)
	}
	dir, err := os.MkdirTemp("", "imagegate-e2e-pg-")
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &Postgres{bin: bin, dataDir: filepath.Join(dir, "data"), logDir: t.TempDir(), Port: FreePort(t)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("postgres: running as root and no postgres user to run initdb as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatalf("postgres: %v", err)
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", p.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "-N")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.Start(t)
	return p
}

// Start starts the server (again, after Kill) and waits until it accepts
// connections.
func (p *Postgres) Start(t TB) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		p.Process = startProcess(t, "postgres", p.logDir, filepath.Join(p.bin, "postgres"), []string{
			"-D", p.dataDir, "-p", strconv.Itoa(p.Port), "-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=200",
		}, nil, p.cred)
		ok := false
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if exited, _ := p.Exited(); exited {
				break
			}
			if c, err := net.DialTimeout("tcp", hostPort(p.Port), time.Second); err == nil {
				c.Close()
				ok = true
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if ok {
			return
		}
		// After a kill a dying backend may still hold the shared memory.
		if attempt == 20 {
			t.Fatalf("postgres did not start; last lines of %s:\n%s", p.LogPath, p.Tail(20))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Kill ends the server as a crash does: SIGKILL to it and its backends.
// Backends call setsid, leaving the postmaster's process group (so a signal
// to that group misses them, and they would go on committing), hence the postmaster
// is stopped first, so it starts no new one, and each child is killed by pid.
func (p *Postgres) Kill() {
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	children := childProcesses(pid)
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-p.done
	// Reparented now: wait until none of them is left holding the shared
	// memory or the port.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		left := false
		for _, c := range children {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c)); err == nil && !bytes.Contains(b[bytes.LastIndexByte(b, ')')+1:], []byte(" Z ")) {
				left = true
			}
		}
		if !left {
			break
		}
	}
}

// childProcesses lists the live processes whose parent is pid, from /proc.
func childProcesses(pid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// After the command name, which may hold spaces and parentheses:
		// state, then the parent's pid.
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if i < 0 || len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil && ppid == pid {
			n, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			out = append(out, n)
		}
	}
	return out
}

// URL is the connection URL of the postgres database.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", hostPort(p.Port))
}
