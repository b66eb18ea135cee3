package console

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/rego"
)

// imagegateBin is imagegate, built once by TestMain.
var imagegateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imagegate-console-bin")
	if err != nil {
		panic(err)
	}
	imagegateBin = filepath.Join(dir, "imagegate")
	cmd := exec.Command("go", "build", "-o", imagegateBin, "./cmd/imagegate")
	cmd.Dir = "../.."
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building imagegate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const policies = `
apiVersion: imagegate.dev/v1alpha1
kind: Attestor
metadata: {name: ci-signer}
spec:
  description: the CI pipeline's key
  publicKeys:
  - |
    -----BEGIN PUBLIC KEY-----
    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEIEJtfaDTtTritO+MNkbZLBxG4rhE
    0VQLFXCgAwbSMd7b7p+/K+u/1FjgzBNFIHND2REgSekA9rp57JunJDg0OQ==
    -----END PUBLIC KEY-----
---
apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: signed-in-secure}
spec:
  name: signed-in-secure
  policy: {requiredAttestors: [ci-signer]}
  clusters: [{clusterId: c1, namespaces: [secure]}]
---
apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-bad}
spec: {strategyId: 1, strategyName: block bad images, clusterId: c1, ruleAction: 2, imageName: ["bad-*"]}
`

const tokens = `admin-secret,root,imagegate:admins
team-secret,tina,team
nobody-secret,nobody
`

// server is a running imagegate serve with the console.
type server struct {
	base, api string
	dir       string
	cmd       *exec.Cmd
	log       *bytes.Buffer
}

// known is the i-th filled event, one a minute back from end: namespaces
// ns0..ns2, actions in turn (block, alert, allow, unsigned, error), two
// clusters, four repositories; blocked and alerted images hit a strategy.
func known(i int, end time.Time, step time.Duration) *audit.Event {
	at := end.Add(-time.Duration(i+1) * step)
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(id[8:], uint64(i))
	a := []string{"block", "alert", "allow", "unsigned", "error"}[i%5]
	decision := "allowed"
	if a == "block" || a == "unsigned" {
		decision = "denied"
	}
	img := audit.ImageEvent{Image: fmt.Sprintf("registry.example.com/team%d/app%d:%d", i%2, i%4, i), Action: a}
	if a == "block" || a == "alert" {
		img.Strategies = []audit.StrategyHit{{ID: 1, Name: "block bad images", Action: a}}
	}
	return &audit.Event{ID: hex.EncodeToString(id[:]), Type: audit.TypeAdmission, Time: at, ClusterID: fmt.Sprint("c", 1+i%2),
		UID: fmt.Sprint("u", i), Operation: "CREATE", Kind: "Pod", Namespace: fmt.Sprint("ns", i%3), Name: fmt.Sprint("pod-", i),
		User: audit.User{Username: "alice"}, Decision: decision, Actions: []string{a}, Images: []audit.ImageEvent{img}}
}

// drillDown is the event the detail view is checked on: every part shown.
func drillDown(at time.Time) *audit.Event {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(id[8:], 1<<40)
	authn := true
	return &audit.Event{ID: hex.EncodeToString(id[:]), Type: audit.TypeAdmission, Time: at, ClusterID: "c1", UID: "drill", Operation: "CREATE",
		Kind: "Deployment", Namespace: "secure", Name: "payments", User: audit.User{Username: "mallory", Groups: []string{"devs"}},
		Authenticated: &authn, Decision: "denied", Actions: []string{"unsigned", "alert"},
		Violations: []string{"image registry.example.com/pay/api:2 is not signed by ci-signer"},
		Images: []audit.ImageEvent{
			{Image: "registry.example.com/pay/api:2", Digest: "sha256:" + strings.Repeat("ab", 32), Action: "unsigned",
				MissingAttestors: []audit.MissingAttestor{{Attestor: "ci-signer", Reason: "no matching signatures: key mismatch"}}},
			{Image: "registry.example.com/pay/sidecar:1", Digest: "sha256:" + strings.Repeat("cd", 32), Action: "alert",
				Strategies: []audit.StrategyHit{{ID: 7, Name: "alert high vulns", Action: "alert"}},
				Findings:   []rego.Finding{{Category: "Vul", ID: "CVE-2026-0001", Level: "high"}}},
		}}
}

// xss is markup an attacker can put into an event: image references and
// names come from the workloads people submit.
const xss = `<img src=x onerror="window.__pwned=1">`

// hostile is an event whose every text field is markup.
func hostile(at time.Time) *audit.Event {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(id[8:], 1<<41)
	return &audit.Event{ID: hex.EncodeToString(id[:]), Type: audit.TypeAdmission, Time: at, ClusterID: xss, UID: "x", Operation: "CREATE",
		Kind: "Pod", Namespace: "hostile", Name: xss, User: audit.User{Username: xss}, Decision: "denied", Actions: []string{"block"},
		Violations: []string{xss}, Images: []audit.ImageEvent{{Image: "evil.example/" + xss, Action: "block", Reasons: []string{xss}}}}
}

// appendEvent writes one more event into the store serve is reading (both
// open the bbolt file per operation).
func appendEvent(t testing.TB, path string, ev *audit.Event) {
	t.Helper()
	s, err := audit.OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write([]*audit.Event{ev}); err != nil {
		t.Fatal(err)
	}
}

// fill writes n known events ending at end, step apart, and the drill-down
// event, into a new bbolt store at path.
func fill(t testing.TB, path string, n int, end time.Time, step time.Duration) *audit.Event {
	t.Helper()
	s, err := audit.OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 20000
	evs := make([]*audit.Event, 0, batch)
	// Oldest first: ids ascend, as the recorder writes them (bbolt fills
	// its pages best in key order).
	for i := n - 1; i >= 0; i-- {
		evs = append(evs, known(i, end, step))
		if len(evs) == batch || i == 0 {
			if err := s.Write(evs); err != nil {
				t.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	d := drillDown(end.Add(-step / 2))
	if err := s.Write([]*audit.Event{d, hostile(end.Add(-step / 4))}); err != nil {
		t.Fatal(err)
	}
	return d
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// selfSigned writes a serving certificate for 127.0.0.1.
func selfSigned(t testing.TB, dir string) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	cert, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, keyFile
}

var insecure = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test's self-signed certificate

// startServe runs imagegate serve with the console over the store at
// storePath and grants the team the events of ns1 through the API.
func startServe(t testing.TB, dir, storePath string) *server {
	t.Helper()
	pol := filepath.Join(dir, "policies")
	os.Mkdir(pol, 0o755)
	os.WriteFile(filepath.Join(pol, "p.yaml"), []byte(policies), 0o600)
	os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(tokens), 0o600)
	os.WriteFile(filepath.Join(dir, "facts.yaml"), []byte("images: {}\n"), 0o600)
	cert, key := selfSigned(t, dir)
	listen, apiListen, consoleListen := freePort(t), freePort(t), freePort(t)
	s := &server{base: "https://" + consoleListen, api: "https://" + apiListen, dir: dir, log: &bytes.Buffer{}}
	s.cmd = exec.Command(imagegateBin, "serve", "--policies", pol, "--cluster-id", "c1", "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--listen", listen, "--metrics-listen", "", "--facts", filepath.Join(dir, "facts.yaml"),
		"--api-listen", apiListen, "--api-tokens", filepath.Join(dir, "tokens.csv"), "--api-state", filepath.Join(dir, "iam.json"),
		"--audit-store", storePath, "--console-listen", consoleListen)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", s.log)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := insecure.Get(s.base + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("console not up: %v\n%s", err, s.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.grantTeam(t)
	return s
}

func (s *server) rest(t testing.TB, method, path string, body any) map[string]any {
	t.Helper()
	var rd *bytes.Reader
	b, _ := json.Marshal(body)
	rd = bytes.NewReader(b)
	req, _ := http.NewRequest(method, s.api+path, rd)
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	req.Header.Set("X-Auth-Token", "admin-secret")
	resp, err := insecure.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, out)
	}
	return out
}

// grantTeam lets group team read the events of namespace ns1 only.
func (s *server) grantTeam(t testing.TB) {
	t.Helper()
	out := s.rest(t, "POST", "/v3.0/OS-ROLE/roles", map[string]any{"role": map[string]any{"display_name": "TeamEvents", "type": "AX", "description": "ns1 events",
		"policy": json.RawMessage(`{"Version":"1.1","Statement":[{"Effect":"Allow","Action":["imagegate:ListEvents"],"Resource":["*"],"Condition":{"StringEquals":{"imagegate:Namespace":["ns1"]}}}]}`)}})
	id := out["role"].(map[string]any)["id"].(string)
	req, _ := http.NewRequest("PUT", s.api+"/v3.0/OS-ROLE/groups/team/roles/"+id, nil)
	req.Header.Set("X-Auth-Token", "admin-secret")
	resp, err := insecure.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("attach: %v %v", resp, err)
	}
	resp.Body.Close()
}

// artefacts is where screenshots go: $CONSOLE_ARTEFACTS or a new temp dir,
// printed in the log.
func artefacts(t testing.TB) string {
	dir := os.Getenv("CONSOLE_ARTEFACTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "imagegate-console-artefacts-"); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(dir, 0o755)
	t.Logf("screenshots in %s", dir)
	return dir
}
