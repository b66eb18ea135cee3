package attestation

import (
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// A registry client made for a request's credentials (a pod's pull
// secrets) is kept a short while under the credentials' ID, so the next
// admission with the same ID reuses the bearer token it fetched: without
// it, every tag of a pod with pull secrets is resolved with a new client
// that asks the registry's token service again — a round trip of every
// admission by tag, before the HEAD. The ID names the namespace, service
// account and secret names, so a client only ever serves requests holding
// the same credentials; a refused or failed fetch forgets the ID's client,
// and a rotated secret is read again within credClientTTL. A mutating
// webhook sees pod specs before the API server validates them, so two
// specs may spell one ID (a secret named "a,b"); the ID starts with the
// request's own namespace, and within it any pod may name any secret and
// service account, so sharing a client gives a pod nothing it could not
// name itself.
const (
	credClientTTL = time.Minute
	// At most credClientEntries clients, each replaced after
	// credClientUses requests: it keeps a reader and a token per
	// repository it was asked for, so it holds at most that many (a few
	// KiB each: ≤ ~16 MiB in all).
	credClientEntries = 256
	credClientUses    = 16
)

// credClients holds the clients of request credentials by ID.
type credClients struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*credClient
}

type credClient struct {
	once sync.Once
	p    *remote.Puller
	err  error
	exp  time.Time
	uses int
}

func newCredClients(now func() time.Time) *credClients {
	return &credClients{now: now, m: map[string]*credClient{}}
}

// get returns id's client, made by build when there is none usable.
func (c *credClients) get(id string, build func() (*remote.Puller, error)) (*remote.Puller, error) {
	if id == "" {
		return build()
	}
	e := c.take(id)
	e.once.Do(func() { e.p, e.err = build() })
	if e.err != nil {
		c.forget(id)
	}
	return e.p, e.err
}

// take returns id's entry counted as used once, replacing one that expired
// or was used up.
func (c *credClients) take(id string) *credClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	e, ok := c.m[id]
	if !ok || !now.Before(e.exp) || e.uses >= credClientUses {
		if !ok && len(c.m) >= credClientEntries {
			// The cost of losing a client is a token fetch.
			makeRoom(c.m, credClientEntries, func(e *credClient) bool { return !now.Before(e.exp) })
		}
		e = &credClient{exp: now.Add(credClientTTL)}
		c.m[id] = e
	}
	e.uses++
	return e
}

// forget drops id's client after it could not be built or a fetch with it
// failed: its credentials or token may be what the registry refused. A
// client another request built meanwhile may go too; that costs a token.
func (c *credClients) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
