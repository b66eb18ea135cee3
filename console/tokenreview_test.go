package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/api"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// reviews answers TokenReviews from a map of token → user and groups, as
// the API server would (the real one: test/e2e's TestDeployChartAPI).
type reviews map[string][]string

func (rv reviews) Create(_ context.Context, tr *authnv1.TokenReview, _ metav1.CreateOptions) (*authnv1.TokenReview, error) {
	out := tr.DeepCopy()
	if who, ok := rv[tr.Spec.Token]; ok {
		out.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: who[0], Groups: who[1:]}}
	}
	return out, nil
}

// A Kubernetes token signs in through TokenReview; its groups are what
// policies attach to (here group team, which may read ns1's events).
func TestSignInWithKubernetesToken(t *testing.T) {
	rv := reviews{"sa-token": {"system:serviceaccount:team:viewer", "team", "system:serviceaccounts"}}
	e := newEnvWith(t, &api.TokenReviewer{Reviews: rv, TTL: time.Second, Now: time.Now})
	b := e.browser()
	st, out, _ := b.signIn("sa-token")
	if st != 200 || out["principal"] != "system:serviceaccount:team:viewer" {
		t.Fatalf("sign-in: %d %v", st, out)
	}
	if st, out := b.get("/api/events?namespace=ns1"); st != 200 || len(out["events"].([]any)) == 0 {
		t.Fatalf("ns1 events through the group's policy: %d %v", st, out)
	}
	if st, out := b.get("/api/events?namespace=ns0"); st != 403 || !strings.Contains(out["error"].(string), "ListEvents") {
		t.Fatalf("ns0 events: %d %v", st, out)
	}
	if st, _, _ := e.browser().signIn("unknown-sa-token"); st != 401 {
		t.Fatalf("a token the API server does not know: %d", st)
	}
}
