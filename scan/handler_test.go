package scan_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/scan"
	"github.com/imagegate/imagegate/workload"
)

// trivyReport is a Trivy report of one image with critical CVEs.
func imageReport(digest, createdAt string, cves ...string) string {
	var vulns []string
	for _, id := range cves {
		vulns = append(vulns, fmt.Sprintf(`{"VulnerabilityID":%q,"PkgName":"p","Severity":"CRITICAL"}`, id))
	}
	return fmt.Sprintf(`{"SchemaVersion":2,"CreatedAt":%q,"ArtifactName":"registry.example.com/shop/app@%s",
		"Metadata":{"RepoDigests":[]},"Results":[{"Target":"t","Class":"os-pkgs","Vulnerabilities":[%s]}]}`, createdAt, digest, strings.Join(vulns, ","))
}

// scansServer serves the scan endpoints over a store, recording audit calls.
type scansServer struct {
	t      *testing.T
	path   string
	srv    *httptest.Server
	reader *scan.Reader
	mu     sync.Mutex
	calls  []scan.Call
}

func newScansServer(t *testing.T) *scansServer {
	s := &scansServer{t: t, path: filepath.Join(t.TempDir(), "scans.db")}
	var err error
	if s.reader, err = scan.OpenReader(s.path); err != nil {
		t.Fatal(err)
	}
	h := &scan.Handler{Store: scan.NewFile(s.path), Token: "s3cret", MaxBytes: 1 << 20, Now: func() time.Time { return now },
		OnImport: func() { s.reader.Refresh() },
		Audit:    func(c scan.Call) { s.mu.Lock(); s.calls = append(s.calls, c); s.mu.Unlock() }}
	mux := http.NewServeMux()
	mux.Handle(scan.RouteImport, h)
	mux.Handle(scan.RouteClearMalicious, h)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scansServer) do(method, path, token, body string) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		s.t.Fatalf("%s %s: %d, not JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

func (s *scansServer) lookup(digest string) (findings int, malicious string) {
	img := workload.ParseImage("registry.example.com/shop/app@" + digest)
	sc, reason := s.reader.Index().Lookup(img, "")
	if sc != nil {
		findings = len(sc.Findings)
	}
	return findings, reason
}

func (s *scansServer) lastCall() scan.Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		s.t.Fatal("no call audited")
	}
	return s.calls[len(s.calls)-1]
}

// TestScansKeepTheNewest: a report older than the stored scan of its image
// (a backdated clean report over a critical CVE) is refused with 409 and the
// stored scan's time; a newer one replaces it; every call is audited with
// its principal.
func TestScansKeepTheNewest(t *testing.T) {
	s := newScansServer(t)
	d := "sha256:" + strings.Repeat("1", 64)
	const stored = "2026-11-20T10:00:00Z"
	if st, body := s.do("POST", "/api/v1/scans", "s3cret", imageReport(d, stored, "CVE-2024-3094")); st != 200 {
		t.Fatalf("setup: %d %v", st, body)
	}
	cases := []struct {
		name, token, report string
		status              int
		code                string
		findings            int // after the call
	}{
		{"backdated clean report", "s3cret", imageReport(d, "2026-11-19T10:00:00Z"), 409, "Conflict.StaleScan", 1},
		{"same time, other findings", "s3cret", imageReport(d, stored), 409, "Conflict.StaleScan", 1},
		{"the stored report again", "s3cret", imageReport(d, stored, "CVE-2024-3094"), 200, "", 1},
		{"dated in the future", "s3cret", imageReport(d, "2027-01-01T00:00:00Z"), 400, "InvalidParameter.ScanTime", 1},
		{"no token", "", imageReport(d, "2026-11-22T10:00:00Z"), 401, "InvalidToken", 1},
		{"newer clean report", "s3cret", imageReport(d, "2026-11-22T10:00:00Z"), 200, "", 0},
		{"then the old critical one", "s3cret", imageReport(d, stored, "CVE-2024-3094"), 409, "Conflict.StaleScan", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body := s.do("POST", "/api/v1/scans", c.token, c.report)
			if st != c.status {
				t.Fatalf("status %d, want %d: %v", st, c.status, body)
			}
			if c.status == 409 {
				if body["storedScanTime"] == nil || !strings.Contains(body["error"].(string), "only a newer scan replaces it") {
					t.Errorf("409 without the stored scan's time: %v", body)
				}
			}
			if n, _ := s.lookup(d); n != c.findings {
				t.Errorf("%d findings stored, want %d", n, c.findings)
			}
			call := s.lastCall()
			wantPrincipal := scan.TokenPrincipal
			if c.token == "" {
				wantPrincipal = ""
			}
			if call.Code != c.code || call.Status != c.status || call.Principal != wantPrincipal || call.Action != scan.ActionImport ||
				call.Allowed != (c.token != "") || call.SourceIP != "127.0.0.1" || call.RequestID == "" {
				t.Errorf("audited %+v", call)
			}
			if c.token != "" && call.Resource != "imagegate:scan/"+d {
				t.Errorf("audited resource %q", call.Resource)
			}
		})
	}
	if st, body := s.do("POST", "/api/v1/scans", "s3cret", imageReport(d, "2026-11-19T10:00:00Z")); st != 409 || body["storedScanTime"] != "2026-11-22T10:00:00Z" {
		t.Errorf("stored scan time: %d %v", st, body)
	}
}

// TestMaliciousMarkClearedOnlyExplicitly: a clean report leaves a feed's
// malicious mark; DELETE /api/v1/scans/malicious/DIGEST clears it, audited.
func TestMaliciousMarkClearedOnlyExplicitly(t *testing.T) {
	s := newScansServer(t)
	d := "sha256:" + strings.Repeat("2", 64)
	if st, body := s.do("POST", "/api/v1/scans?format=malicious-feed", "s3cret", d+" cryptominer\n"); st != 200 {
		t.Fatalf("feed: %d %v", st, body)
	}
	steps := []struct {
		name, method, path, token, body string
		status                          int
		malicious                       bool
		action                          string
	}{
		{"clean report", "POST", "/api/v1/scans", "s3cret", imageReport(d, "2026-11-22T10:00:00Z"), 200, true, scan.ActionImport},
		{"clear without the token", "DELETE", "/api/v1/scans/malicious/" + d, "guess", "", 401, true, scan.ActionClearMalicious},
		{"clear a malformed digest", "DELETE", "/api/v1/scans/malicious/sha256:zz", "s3cret", "", 400, true, scan.ActionClearMalicious},
		{"clear", "DELETE", "/api/v1/scans/malicious/" + d + "?reason=false+positive", "s3cret", "", 200, false, scan.ActionClearMalicious},
		{"clear again", "DELETE", "/api/v1/scans/malicious/" + d, "s3cret", "", 404, false, scan.ActionClearMalicious},
	}
	for _, c := range steps {
		t.Run(c.name, func(t *testing.T) {
			st, body := s.do(c.method, c.path, c.token, c.body)
			if st != c.status {
				t.Fatalf("status %d, want %d: %v", st, c.status, body)
			}
			if _, reason := s.lookup(d); (reason != "") != c.malicious {
				t.Errorf("malicious %q, want %v", reason, c.malicious)
			}
			if call := s.lastCall(); call.Action != c.action || call.Status != c.status {
				t.Errorf("audited %+v", call)
			}
		})
	}
	if call := s.calls[len(s.calls)-2]; call.Decision != "malicious mark cleared: false positive" || call.Principal != scan.TokenPrincipal || call.Resource != "imagegate:scan/"+d {
		t.Errorf("audited clear: %+v", call)
	}
	// A reader opened afterwards does not see the mark either.
	r, err := scan.OpenReader(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, reason := r.Index().Lookup(workload.ParseImage("x@"+d), ""); reason != "" {
		t.Errorf("a fresh reader sees the cleared mark: %q", reason)
	}
}

// TestImportBatchKeepsTheNewest: a batch (trivy-operator reports) with an
// older scan of an image already stored skips it rather than failing the
// batch, and still imports the rest; RefuseStale refuses the whole batch.
func TestImportBatchKeepsTheNewest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scans.db")
	a, b := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	rec := func(digest, at string, cves ...string) *scan.Record {
		r, err := scan.ParseTrivy([]byte(imageReport(digest, at, cves...)), now)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if err := scan.Import(path, []*scan.Record{rec(a, "2026-11-20T10:00:00Z", "CVE-1")}, nil); err != nil {
		t.Fatal(err)
	}
	batch := []*scan.Record{rec(a, "2026-11-19T10:00:00Z"), rec(b, "2026-11-19T10:00:00Z", "CVE-2")}
	err := scan.Import(path, batch, nil, scan.RefuseStale())
	if _, ok := err.(*scan.StaleError); !ok {
		t.Errorf("RefuseStale: %v, want a *StaleError", err)
	}
	if err := scan.Import(path, batch, nil); err != nil {
		t.Fatalf("batch: %v", err)
	}
	r, err := scan.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	for digest, want := range map[string]int{a: 1, b: 1} {
		sc, _ := r.Index().Lookup(workload.ParseImage("x@"+digest), "")
		if sc == nil || len(sc.Findings) != want {
			t.Errorf("%s: %+v, want %d findings", digest, sc, want)
		}
	}
}
