package api

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadTokens(t *testing.T) {
	cases := []struct {
		name, file, errPart string
		token, principal    string
		groups              []string
	}{
		{"principal and groups", "t1,alice,sec|ops\n", "", "t1", "alice", []string{"sec", "ops"}},
		{"no groups", "t1,bob\n", "", "t1", "bob", nil},
		{"kube-apiserver token file", "t1,carol,uid-1,\"imagegate:admins,ops\"\n", "", "t1", "carol", []string{"imagegate:admins", "ops"}},
		{"comments", "# c\nt1,dan\n", "", "t1", "dan", nil},
		{"one field", "t1\n", ":1: expected token,principal", "", "", nil},
		{"empty principal", "t1,\n", ":1: expected", "", "", nil},
		{"duplicate", "t1,a\nt1,b\n", ":2: token used twice", "", "", nil},
		{"empty", "", "no tokens", "", "", nil},
		{"too many fields", "a,b,c,d,e\n", "5 fields", "", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "tokens.csv")
			os.WriteFile(p, []byte(c.file), 0o600)
			tok, err := LoadTokens(p)
			if c.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), c.errPart) {
					t.Fatalf("err %v, want %q", err, c.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, ok := tok.lookup(c.token)
			if !ok || got.ID != c.principal || !reflect.DeepEqual(got.Groups, c.groups) {
				t.Errorf("got %+v", got)
			}
			if _, ok := tok.lookup(c.token + "x"); ok {
				t.Error("a longer token matched")
			}
		})
	}
	if _, err := LoadTokens(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "--api-tokens") {
		t.Errorf("missing file: %v", err)
	}
}

// TestStatePersists: IAM changes survive a restart; a corrupt state file
// refuses to start rather than starting open.
func TestStatePersists(t *testing.T) {
	e := newEnv(t)
	st, body := e.rpc("admin-token", "CreateControlPolicy", "PolicyName", "P", "EffectScope", "All", "PolicyDocument", denyProdAllowRules)
	expect(t, st, body, 200, "")
	tokens := e.h.auth
	h2, err := NewHandler(&DirStore{Dir: e.dir}, tokens, e.state)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h2.state.load().data.ControlPolicies); n != 2 {
		t.Errorf("after restart: %d control policies", n)
	}
	bad := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(bad, []byte(`{"controlPolicies":{"cp-x":{"PolicyId":"cp-x","PolicyDocument":"{}"}}}`), 0o600)
	if _, err := NewHandler(&DirStore{Dir: e.dir}, tokens, bad); err == nil || !strings.Contains(err.Error(), "cp-x") {
		t.Errorf("corrupt state: %v", err)
	}
}

// TestTokensReload: a changed tokens file takes effect without a restart;
// one that no longer parses keeps the tokens in force and is reported once.
func TestTokensReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens.csv")
	write := func(body string, age time.Duration) {
		os.WriteFile(p, []byte(body), 0o600)
		mt := time.Now().Add(-age)
		os.Chtimes(p, mt, mt)
	}
	write("old-token,alice\n", time.Hour)
	tok, err := LoadTokens(p)
	if err != nil {
		t.Fatal(err)
	}
	var reported []error
	tok.ReloadEvery, tok.OnReloadError = 0, func(err error) { reported = append(reported, err) }
	if _, ok := tok.lookup("old-token"); !ok {
		t.Fatal("old token")
	}
	write("new-token,bob,ops\n", 30*time.Minute)
	if p, ok := tok.lookup("new-token"); !ok || p.ID != "bob" {
		t.Errorf("new token not loaded: %+v", p)
	}
	if _, ok := tok.lookup("old-token"); ok {
		t.Error("revoked token still accepted")
	}
	write("broken\n", 10*time.Minute)
	for i := 0; i < 3; i++ {
		if _, ok := tok.lookup("new-token"); !ok {
			t.Error("a broken file dropped the tokens in force")
		}
	}
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), ":1: expected token,principal") {
		t.Errorf("reported %v", reported)
	}
}
