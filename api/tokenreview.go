package api

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/imagegate/imagegate/iam"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
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

// TokenReviews is what a TokenReviewer needs of the API server: client-go's
// typed AuthenticationV1().TokenReviews() has it.
type TokenReviews interface {
	Create(ctx context.Context, review *authnv1.TokenReview, opts metav1.CreateOptions) (*authnv1.TokenReview, error)
}

var _ TokenReviews = authnclient.TokenReviewInterface(nil)

// TokenReviewer authenticates Kubernetes tokens (service accounts, or
// whatever the cluster's authenticators accept) with the API server's
// TokenReview: the principal is the user name, its groups the user's groups.
type TokenReviewer struct {
	// Reviews creates TokenReviews as imagegate's own identity, which
	// needs the system:auth-delegator cluster role (create tokenreviews).
	Reviews TokenReviews
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
	// An API server that hangs must not hold the API call for long.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := tr.Reviews.Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return iam.Principal{}, false, fmt.Errorf("token review: %w", err)
	}
	if !out.Status.Authenticated || out.Status.User.Username == "" {
		return iam.Principal{}, false, nil
	}
	return iam.Principal{ID: out.Status.User.Username, Groups: out.Status.User.Groups}, true, nil
}
