package api

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"
)

// fileWatch notices when a file changed or went away, looking at most
// every so often (a stat; the file is read only when it changed).
type fileWatch struct {
	path    string
	stamp   string // of the version in force; "" once it was deleted
	bad     string // of a version that did not load (reported once)
	checked time.Time
}

type fileEvent int

const (
	fileSame    fileEvent = iota
	fileChanged           // a version not loaded yet: read it
	fileGone              // deleted while a version was in force
)

func fileStamp(path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d/%d", info.Size(), info.ModTime().UnixNano()), nil
}

func (w *fileWatch) poll(every time.Duration) (string, fileEvent) {
	now := time.Now()
	if now.Sub(w.checked) < every {
		return "", fileSame
	}
	w.checked = now
	stamp, err := fileStamp(w.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if w.stamp == "" {
			return "", fileSame
		}
		w.stamp, w.bad = "", ""
		return "", fileGone
	case err != nil:
		// Unreadable metadata (permissions): read it to report why.
		return "", fileChanged
	case stamp == w.stamp || stamp == w.bad:
		return "", fileSame
	}
	return stamp, fileChanged
}

// failed records that the version stamped did not load; true the first
// time, so each bad version is reported once.
func (w *fileWatch) failed(stamp string) bool {
	if stamp != "" && stamp == w.bad {
		return false
	}
	w.bad = stamp
	return true
}

func report(fn func(error), err error) {
	if fn != nil {
		fn(err)
	}
}

// TokenFile is a file holding one bearer token (--scan-token-file,
// --audit-token-file). Like the tokens file it is re-read when it changes
// (checked at most every ReloadEvery), so the token rotates without a
// restart; a version that does not load (empty) keeps the token in force
// and is reported to OnReloadError; a deleted file revokes the token
// (reported to OnRevoked) until it is back.
type TokenFile struct {
	flag, path, principal string
	ReloadEvery           time.Duration
	OnReloadError         func(error)
	OnRevoked             func(error)

	mu    sync.Mutex
	token string
	watch fileWatch
}

// LoadTokenFile reads the token at path (surrounding space ignored); calls
// with it act as principal. flag names the file in errors.
func LoadTokenFile(flag, path, principal string) (*TokenFile, error) {
	stamp, err := fileStamp(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	tok, err := readTokenFile(flag, path)
	if err != nil {
		return nil, err
	}
	return &TokenFile{flag: flag, path: path, principal: principal, ReloadEvery: DefaultTokensReload, token: tok,
		watch: fileWatch{path: path, stamp: stamp, checked: time.Now()}}, nil
}

func readTokenFile(flag, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%s %s: the file is empty; it must hold a token", flag, path)
	}
	return t, nil
}

// Check says whether token is the file's token (compared in constant
// time), and whose it is.
func (t *TokenFile) Check(token string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch stamp, what := t.watch.poll(t.ReloadEvery); what {
	case fileGone:
		t.token = ""
		report(t.OnRevoked, fmt.Errorf("%s %s was deleted: its token is revoked until it is back", t.flag, t.path))
	case fileChanged:
		tok, err := readTokenFile(t.flag, t.path)
		if err != nil {
			if t.watch.failed(stamp) {
				report(t.OnReloadError, err)
			}
			break
		}
		t.token, t.watch.stamp = tok, stamp
	}
	if t.token == "" || token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(t.token)) != 1 {
		return "", false
	}
	return t.principal, true
}
