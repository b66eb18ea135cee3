// Package pgtest runs a throwaway PostgreSQL server for tests: initdb into
// a temporary directory, then the server on 127.0.0.1 at a free port, as the
// postgres user when the tests run as root (initdb refuses root). Tests
// skip when no PostgreSQL binaries are installed, unless IMAGEGATE_E2E is
// set (the end-to-end target installs them and must not skip).
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDir is where initdb and postgres are: $PG_BINDIR, else the newest
// /usr/lib/postgresql/<version>/bin (Debian's layout), else the directory
// of initdb on PATH; "" when none.
func BinDir() string {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real)
		}
	}
	return ""
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// Server is a running PostgreSQL.
type Server struct {
	Port    int
	dataDir string
	bin     string
	logPath string
	extra   []string // more -c settings
	cred    *syscall.Credential
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
}

// Start runs a new server; Stop ends it and removes its files. Settings
// (name=value) override the defaults, e.g. fsync=on for a benchmark of
// durable writes.
func Start(t testing.TB, settings ...string) *Server {
	t.Helper()
	bin := BinDir()
	if bin == "" {
		if os.Getenv("IMAGEGATE_E2E") != "" {
			t.Fatal("PostgreSQL binaries not found (set PG_BINDIR, or run scripts/e2e-tools.sh)")
		}
		t.Skip("PostgreSQL binaries not found (set PG_BINDIR, or apt-get install postgresql)")
	}
	s, err := start(bin, settings...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func start(bin string, settings ...string) (*Server, error) {
	dir, err := os.MkdirTemp("", "imagegate-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "postgres.log"), extra: settings}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and initdb refuses root: no postgres user to run as (%w)", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", s.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "-N")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	if err := s.Restart(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Restart starts the server again (after Kill) on the same port and data,
// and waits until it accepts connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// After a kill, a backend may hold the shared memory a moment longer:
	// the new postmaster then refuses to start, and is started again.
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var exited bool
		if exited, err = s.startOnce(); err == nil || !exited {
			return err
		}
	}
	return err
}

func (s *Server) startOnce() (exited bool, err error) {
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return false, err
	}
	// fsync off makes each test's schema and writes fast and loses nothing
	// when only the server is killed (the page cache survives it); commits
	// stay synchronous, so a killed server keeps what it acknowledged.
	args := []string{"-D", s.dataDir, "-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200"}
	for _, kv := range s.extra {
		args = append(args, "-c", kv) // the last of a name wins
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Killed with the test binary, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return false, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return false, nil
		}
		select {
		case <-done:
			s.cmd = nil
			return true, fmt.Errorf("postgres exited: %s", s.tail())
		default:
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("postgres not accepting connections after 30s: %v\n%s", err, s.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) tail() string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// Kill ends the server the way a crash does (SIGKILL of the postmaster and
// its backends), for tests of an unreachable database; Restart brings it
// back with its data.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	Crash(s.cmd.Process.Pid, s.done)
	s.cmd = nil
}

// Crash kills the postmaster pid (the leader of its process group) and its
// backends with SIGKILL, as a machine crash would, and returns once they
// are gone; done is closed when the caller has waited for the postmaster.
// The backends are in process groups of their own (postgres calls setsid), out
// of reach of the process group, and would go on answering — and
// committing — on their connections until they noticed the postmaster
// gone: they are killed one by one, the postmaster stopped first so that
// it forks no more.
func Crash(pid int, done <-chan struct{}) {
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	children := childrenOf(pid)
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-done
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !slices.ContainsFunc(children, alive) {
			break
		}
	}
}

// CPU is the processor time the server has used so far: the postmaster's
// and its processes' (user and system, those ended included), for
// benchmarks to give a cost per operation that does not depend on how busy
// the machine is.
func (s *Server) CPU() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	pid := s.cmd.Process.Pid
	ticks := cpuTicks(pid, true)
	for _, c := range childrenOf(pid) {
		ticks += cpuTicks(c, false)
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// cpuTicks is utime+stime of a process (with its waited-for children's
// when children is set) from /proc/<pid>/stat.
func cpuTicks(pid int, children bool) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0
	}
	var n int64
	fields := []int{11, 12} // utime, stime
	if children {
		fields = append(fields, 13, 14) // cutime, cstime
	}
	for _, k := range fields {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		n += v
	}
	return n
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		if ppid, _, ok := procStat(p); ok && ppid == pid {
			n, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out = append(out, n)
		}
	}
	return out
}

// alive reports whether a process exists and is not a zombie.
func alive(pid int) bool {
	_, state, ok := procStat(fmt.Sprintf("/proc/%d/stat", pid))
	return ok && state != "Z"
}

// procStat reads the parent and the state from /proc/<pid>/stat (after the
// command name, which may hold spaces and parentheses).
func procStat(path string) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, "", false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}

// Stop ends the server and removes its files.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
		s.cmd = nil
	}
	s.mu.Unlock()
	os.RemoveAll(filepath.Dir(s.dataDir))
}

// URL is the connection URL of database db.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

var dbSeq atomic.Int64

// NewDatabase creates an empty database for one test and returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return s.URL(name)
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared is one server for the whole test binary (StopShared ends it, from
// TestMain); each test takes a database of its own with NewDatabase.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := BinDir()
	if bin == "" {
		Start(t) // skips or fails as Start does
	}
	sharedOnce.Do(func() { shared, sharedErr = start(bin) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// StopShared stops the shared server if one was started.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}
