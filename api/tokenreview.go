package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/iam"
)

// DefaultTokenReviewTTL is how long a TokenReview answer is reused.
const DefaultTokenReviewTTL = 30 * time.Second

// Authenticator finds who a bearer token belongs to. ok is false for a
// token it does not know; err is for failing to find out.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (p iam.Principal, ok bool, err error)
}

var (
	_ Authenticator = (*Tokens)(nil)
	_ Authenticator = (*TokenReviewer)(nil)
	_ Authenticator = Authenticators(nil)
)

// Authenticate looks the token up in the tokens file.
func (t *Tokens) Authenticate(_ context.Context, token string) (iam.Principal, bool, error) {
	p, ok := t.lookup(token)
	return p, ok, nil
}

// Authenticators asks each in turn; the first that knows the token wins.
type Authenticators []Authenticator

// Authenticate implements Authenticator.
func (as Authenticators) Authenticate(ctx context.Context, token string) (iam.Principal, bool, error) {
	var firstErr error
	for _, a := range as {
		p, ok, err := a.Authenticate(ctx, token)
		if ok {
			return p, true, nil
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return iam.Principal{}, false, firstErr
}

// TokenReviewer authenticates Kubernetes tokens (service accounts, or
// whatever the cluster's authenticators accept) with the API server's
// TokenReview: the principal is the user name, its groups the user's groups.
type TokenReviewer struct {
	// Server is the API server's base URL.
	Server string
	// Client trusts the API server's certificate.
	Client *http.Client
	// TokenFile holds imagegate's own token, re-read on every review
	// because projected service-account tokens rotate. It needs the
	// system:auth-delegator cluster role (create tokenreviews).
	TokenFile string
	// TTL is how long an answer is reused (keyed by the token's hash).
	TTL time.Duration
	Now func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]reviewed
}

type reviewed struct {
	p       iam.Principal
	ok      bool
	expires time.Time
}

// Authenticate implements Authenticator.
func (tr *TokenReviewer) Authenticate(ctx context.Context, token string) (iam.Principal, bool, error) {
	key := sha256.Sum256([]byte(token))
	now := tr.Now()
	tr.mu.Lock()
	if r, hit := tr.cache[key]; hit && now.Before(r.expires) {
		tr.mu.Unlock()
		return r.p, r.ok, nil
	}
	tr.mu.Unlock()
	p, ok, err := tr.review(ctx, token)
	if err != nil {
		return iam.Principal{}, false, err
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.cache == nil || len(tr.cache) > 10000 {
		tr.cache = map[[32]byte]reviewed{}
	}
	tr.cache[key] = reviewed{p, ok, now.Add(tr.TTL)}
	return p, ok, nil
}

func (tr *TokenReviewer) review(ctx context.Context, token string) (iam.Principal, bool, error) {
	own, err := os.ReadFile(tr.TokenFile)
	if err != nil {
		return iam.Principal{}, false, fmt.Errorf("token review: %w", err)
	}
	body, _ := json.Marshal(map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
		"spec": map[string]any{"token": token}})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(tr.Server, "/")+"/apis/authentication.k8s.io/v1/tokenreviews", bytes.NewReader(body))
	if err != nil {
		return iam.Principal{}, false, fmt.Errorf("token review: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(own)))
	resp, err := tr.Client.Do(req)
	if err != nil {
		return iam.Principal{}, false, fmt.Errorf("token review: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return iam.Principal{}, false, fmt.Errorf("token review: %w", err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return iam.Principal{}, false, fmt.Errorf("token review: API server answered %s: %.200s", resp.Status, raw)
	}
	var out struct {
		Status struct {
			Authenticated bool `json:"authenticated"`
			User          struct {
				Username string   `json:"username"`
				Groups   []string `json:"groups"`
			} `json:"user"`
		} `json:"status"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return iam.Principal{}, false, fmt.Errorf("token review: %w", err)
	}
	if !out.Status.Authenticated || out.Status.User.Username == "" {
		return iam.Principal{}, false, nil
	}
	return iam.Principal{ID: out.Status.User.Username, Groups: out.Status.User.Groups}, true, nil
}
