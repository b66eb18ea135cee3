package api

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/imagegate/imagegate/iam"
)

// AccessKey is a stored access key: an AccessKeyId and its secret, bound to
// a principal and its groups (the names IAM policies attach to). The
// secret is kept sealed with AES-GCM under the key of
// --api-access-key-encryption-key-file, the key id as associated data, so
// a sealed secret cannot be moved onto another key id.
type AccessKey struct {
	ID           string   `json:"id"`
	Principal    string   `json:"principal"`
	Groups       []string `json:"groups,omitempty"`
	Status       string   `json:"status"` // Active | Inactive
	Description  string   `json:"description,omitempty"`
	CreateDate   string   `json:"createDate"`
	SealedSecret string   `json:"sealedSecret"`
}

// Access key statuses, as RAM spells them.
const (
	KeyActive   = "Active"
	KeyInactive = "Inactive"
)

// MaxAccessKeysPerPrincipal bounds the keys of one principal (RAM allows
// two; rotation needs at least that).
const MaxAccessKeysPerPrincipal = 5

// liveKey is an access key as authentication uses it.
type liveKey struct {
	principal iam.Principal
	secret    []byte
	active    bool
}

// Sealer seals access key secrets at rest.
type Sealer struct{ aead cipher.AEAD }

// NewSealer uses key (32 bytes: AES-256) to seal secrets.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("access key encryption key: %d bytes, want 32 (AES-256)", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// LoadSealer reads the key file: 32 raw bytes, or 64 hex digits, or the
// base64 of 32 bytes (`head -c32 /dev/urandom | base64`).
func LoadSealer(path string) (*Sealer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--api-access-key-encryption-key-file: %w", err)
	}
	if len(raw) == 32 {
		return NewSealer(raw)
	}
	text := strings.TrimSpace(string(raw))
	if b, err := hex.DecodeString(text); err == nil && len(b) == 32 {
		return NewSealer(b)
	}
	if b, err := base64.StdEncoding.DecodeString(text); err == nil && len(b) == 32 {
		return NewSealer(b)
	}
	return nil, fmt.Errorf("--api-access-key-encryption-key-file %s: want 32 bytes, raw, hex or base64", path)
}

func (s *Sealer) seal(id string, secret []byte) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, secret, []byte(id)))
}

func (s *Sealer) open(id, sealed string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return nil, errors.New("malformed sealed secret")
	}
	n := s.aead.NonceSize()
	return s.aead.Open(nil, raw[:n], raw[n:], []byte(id))
}

// openKeys unseals every stored key once per state version, so a signed
// call costs no decryption.
func (s *state) openKeys(stored map[string]*AccessKey) (map[string]liveKey, error) {
	if len(stored) == 0 {
		return nil, nil
	}
	if s.sealer == nil {
		return nil, errors.New("the state holds access keys: --api-access-key-encryption-key-file is needed to use them")
	}
	out := make(map[string]liveKey, len(stored))
	for id, k := range stored {
		secret, err := s.sealer.open(id, k.SealedSecret)
		if err != nil {
			return nil, fmt.Errorf("access key %s does not unseal (another encryption key file?): %w", id, err)
		}
		out[id] = liveKey{principal: iam.Principal{ID: k.Principal, Groups: k.Groups}, secret: secret, active: k.Status == KeyActive}
	}
	return out, nil
}

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomString draws n characters of alphabet uniformly (rejection
// sampling, so no character is likelier than another).
func randomString(alphabet string, n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	limit := 256 - 256%len(alphabet)
	for len(out) < n {
		_, _ = rand.Read(buf)
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}

// newAccessKey creates a key for principal with groups in d; the secret is
// returned in clear once and stored sealed.
func (s *state) newAccessKey(d *stateData, principal string, groups []string, description string, now time.Time) (*AccessKey, string, error) {
	if s.sealer == nil {
		return nil, "", &apiError{status: 400, code: "InvalidParameter.AccessKey",
			msg: "access keys are off: serve needs --api-access-key-encryption-key-file"}
	}
	n := 0
	for _, k := range d.AccessKeys {
		if k.Principal == principal {
			n++
		}
	}
	if n >= MaxAccessKeysPerPrincipal {
		return nil, "", &apiError{status: 409, code: "LimitExceeded.AccessKey",
			msg: fmt.Sprintf("%s has %d access keys already (at most %d); delete one first", principal, n, MaxAccessKeysPerPrincipal)}
	}
	id := "IG" + randomString(keyAlphabet, 18)
	secret := randomString(secretAlphabet, 40)
	k := &AccessKey{ID: id, Principal: principal, Groups: groups, Status: KeyActive, Description: description,
		CreateDate: now.UTC().Format(time.RFC3339), SealedSecret: s.sealer.seal(id, []byte(secret))}
	if d.AccessKeys == nil {
		d.AccessKeys = map[string]*AccessKey{}
	}
	d.AccessKeys[id] = k
	return k, secret, nil
}

// createAccessKeyView is CreateAccessKey's answer, the only one that shows
// the secret.
func createAccessKeyView(k *AccessKey, secret string) map[string]any {
	return map[string]any{"AccessKey": map[string]any{"AccessKeyId": k.ID, "AccessKeySecret": secret, "Status": k.Status, "CreateDate": k.CreateDate}}
}

// CreateAccessKeyInState adds an access key for principal (with groups) to
// the state file at statePath, as `imagegate access-key create` does while
// serve may be running (serve picks it up within seconds), and returns
// CreateAccessKey's answer.
func CreateAccessKeyInState(statePath string, sealer *Sealer, principal string, groups []string, now time.Time) (map[string]any, error) {
	if principal == "" {
		return nil, errors.New("a principal is required")
	}
	st, err := openState(statePath, iam.Validator{KnownActions: KnownActions()}, sealer, now.UTC().Format(time.RFC3339))
	if err != nil {
		return nil, err
	}
	var out map[string]any
	err = st.update(func(d *stateData) error {
		k, secret, err := st.newAccessKey(d, principal, groups, "", now)
		if err != nil {
			return err
		}
		out = createAccessKeyView(k, secret)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out["RequestId"] = newRequestID()
	return out, nil
}
