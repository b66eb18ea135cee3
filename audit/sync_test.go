package audit_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// undecided is a notable admission (an undecided request), told apart by uid.
func undecided(uid string) audit.Admission {
	return audit.Admission{UID: uid, Operation: "CREATE", Kind: "Pod", Namespace: "shop", Name: "web", Err: errTest}
}

func storedUIDs(t *testing.T, path string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	q := audit.Query{Type: audit.TypeAdmission, Limit: audit.MaxLimit}
	for {
		page, err := audit.ReadStore(path).Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			out[ev.UID] = true
		}
		if page.NextPageToken == "" {
			return out
		}
		q.PageToken = page.NextPageToken
	}
}

// TestSyncRecordIsCommittedOnReturn: in sync mode an event is in the store
// when Record returns; in the default mode it is written a little later.
func TestSyncRecordIsCommittedOnReturn(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []audit.Option
		sync bool
	}{{"sync", []audit.Option{audit.WithSync(audit.DefaultSyncTimeout)}, true}, {"async", nil, false}} {
		t.Run(mode.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.db")
			store, err := audit.OpenStore(path)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := audit.NewRecorder([]audit.Sink{store}, mode.opts...)
			if err != nil {
				t.Fatal(err)
			}
			missing := 0
			for i := range 10 {
				uid := strconv.Itoa(i)
				rec.Record(undecided(uid))
				if !storedUIDs(t, path)[uid] {
					missing++
				}
			}
			rec.Close()
			if mode.sync && missing > 0 {
				t.Errorf("%d of 10 events not in the store when Record returned", missing)
			}
			if !mode.sync && missing == 0 {
				t.Log("every async event was written before the query: the queue was drained in time")
			}
			if n := len(storedUIDs(t, path)); n != 10 {
				t.Errorf("%d events stored after Close, want 10", n)
			}
		})
	}
}

// TestSyncTimeoutDoesNotHang: with the store locked by another process,
// a sync Record returns after the timeout, counted.
func TestSyncTimeoutDoesNotHang(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	store, err := audit.OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	holder, err := bolt.Open(path, 0o600, nil) // holds the file lock
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	rec, err := audit.NewRecorder([]audit.Sink{store}, audit.WithSync(100*time.Millisecond), audit.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rec.Record(undecided("locked"))
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("Record took %v with the store locked, want about the 100ms timeout", d)
	}
	if n := counter(t, reg, "imagegate_audit_sync_timeouts_total"); n != 1 {
		t.Errorf("sync timeouts %v, want 1", n)
	}
	holder.Close()
	rec.Close()
	if !storedUIDs(t, path)["locked"] {
		t.Error("the event was not written once the store was free")
	}
}

// TestSyncSurvivesKill: a process recording in sync mode is killed with
// SIGKILL while recording; every event it acknowledged is in the store.
func TestSyncSurvivesKill(t *testing.T) {
	if path := os.Getenv("IMAGEGATE_AUDIT_CRASH_CHILD"); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSyncSurvivesKill$")
	cmd.Env = append(os.Environ(), "IMAGEGATE_AUDIT_CRASH_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < 300 {
		var uid string
		if _, err := fmt.Sscanf(sc.Text(), "acked %s", &uid); err == nil {
			acked[uid] = true
		}
	}
	cmd.Process.Kill() // SIGKILL, mid-recording
	cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("the child acknowledged only %d events", len(acked))
	}
	stored := storedUIDs(t, path)
	lost := 0
	for uid := range acked {
		if !stored[uid] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged events lost by kill -9", lost, len(acked))
	}
}

// crashChild records events in sync mode from 4 goroutines, printing each
// acknowledged one, until killed.
func crashChild(path string) {
	store, err := audit.OpenStore(path)
	if err != nil {
		panic(err)
	}
	rec, err := audit.NewRecorder([]audit.Sink{store}, audit.WithSync(audit.DefaultSyncTimeout))
	if err != nil {
		panic(err)
	}
	acks := make(chan string, 64)
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				uid := fmt.Sprintf("%d-%d", g, i)
				rec.Record(undecided(uid))
				acks <- uid
			}
		}()
	}
	for uid := range acks {
		fmt.Fprintf(os.Stdout, "acked %s\n", uid)
	}
}
