package attestation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
	"golang.org/x/sync/singleflight"
)

// Verifier checks images against attestors. It is safe for concurrent use
// and meant to live as long as the process: its caches are its value.
type Verifier struct {
	opts    options
	puller  atomic.Pointer[remote.Puller] // with the process keychain only; see sharedPuller
	pulls   atomic.Int64                  // fetches made with puller
	guard   *guard
	digests *ttlCache[string]
	sigs    *ttlCache[*signatures]
	checks  *compiledAttestors
	metrics *verifierMetrics
	public  *publicSigstore
	refs    refCache
	// resolutions coalesces concurrent uncached resolutions of one tag
	// (Resolve, for digest pinning).
	resolutions singleflight.Group
	fetches     chan struct{} // a slot per image being fetched, over all requests
	credClients *credClients  // registry clients of request credentials, by ID
	// referrersAPI remembers per registry whether it serves the OCI
	// referrers API (true) or needs the tag fallback (false).
	referrersAPI *hostMemo[bool]
}

// signatures are an image digest's signatures and attestations as the
// registry served them, with each attestor's verdict on them remembered by
// attestor definition.
type signatures struct {
	legacy       []legacySig // the .sig image's layers
	bundles      []sigBundle // signature bundles (referrers); when any, legacy is not used
	attestations []legacySig // the .att image's layers, when fetched
	attBundles   []sigBundle // attestation bundles (referrers of another predicate)
	legacyErr    error       // why the .sig image could not be used, if it could not
	// Per signature: the key it verified with (see owner).
	legacyOwners, bundleOwners []owner
	attErr                     error // likewise for the .att image
	size                       int64 // approximate bytes held, for the cache's byte bound

	mu      sync.Mutex
	verdict map[string]error
	vuln    map[string]VulnAttestation // by the scan attestors' definitions
}

// New returns a Verifier.
func New(opts ...Option) (*Verifier, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	v := &Verifier{opts: o, metrics: newVerifierMetrics(o.registerer, o.maxRegistryLabels), public: &publicSigstore{cacheDir: o.tufCacheDir, now: o.now},
		fetches: make(chan struct{}, o.fetchConcurrency), checks: newCompiledAttestors(DefaultMaxAttestors)}
	insecure := map[string]bool{}
	for _, h := range o.insecure {
		insecure[h] = true
	}
	g := &guard{next: o.transport, insecure: insecure, perHost: o.perRegistry, maxBody: o.maxBytes,
		retries: o.retries, backoff: o.backoff, slots: map[string]*hostSlots{},
		count: v.metrics.request, pings: newHostMemo[pingAnswer](o.now)}
	v.guard = g
	v.referrersAPI = newHostMemo[bool](o.now)
	v.credClients = newCredClients(o.now)
	p, err := v.newPuller(o.keychain)
	if err != nil {
		return nil, err
	}
	v.puller.Store(p)
	v.digests = newTTLCache[string](o.cacheSize, o.staleIfError, o.now)
	v.sigs = newTTLCache[*signatures](o.cacheSize, o.staleIfError, o.now)
	v.sigs.maxBytes, v.sigs.sizeOf = o.cacheBytes, func(s *signatures) int64 { return s.size }
	return v, nil
}

func (v *Verifier) newPuller(kc authn.Keychain) (*remote.Puller, error) {
	// ggcr's own retries are off: the guard retries within the deadline.
	return remote.NewPuller(remote.WithTransport(v.guard), remote.WithAuthFromKeychain(kc),
		remote.WithUserAgent("imagegate"), remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
		// The referrers tag fallback is fetched alongside the API call
		// (fetchBundles), not after it.
		remote.WithReferrersTagFallback(false))
}

// sharedPuller is the process keychain's registry client. A client keeps a
// reader (transport, token) per repository for its whole life, so it is
// replaced after every DefaultClientReuse fetches: images from thousands
// of repositories or registries do not accumulate. The cost is a token
// fetch per repository once per generation.
func (v *Verifier) sharedPuller() (*remote.Puller, error) {
	if n := v.pulls.Add(1); n%DefaultClientReuse == 0 {
		p, err := v.newPuller(v.opts.keychain)
		if err != nil {
			return nil, err
		}
		v.puller.Store(p)
		return p, nil
	}
	return v.puller.Load(), nil
}

// Credentials are one request's registry credentials (a pod's pull
// secrets), tried before the process keychain.
type Credentials struct {
	Keychain authn.Keychain // nil: the process keychain alone
	// ID names the credentials (namespace, service account, secret names):
	// concurrent cache misses share a registry fetch only with equal IDs.
	ID string
}

// pullerFunc returns the puller a cache miss fetches with.
type pullerFunc func() (*remote.Puller, error)

// pullerFor builds or finds the request's puller only on a cache miss: the
// warm path stays free of it. A puller caches registry tokens per
// repository, so it serves only requests with the same credentials ID (see
// credClients).
func (v *Verifier) pullerFor(c Credentials) pullerFunc {
	if c.Keychain == nil {
		return v.sharedPuller
	}
	return sync.OnceValues(func() (*remote.Puller, error) {
		return v.credClients.get(c.ID, func() (*remote.Puller, error) {
			return v.newPuller(authn.NewMultiKeychain(c.Keychain, v.opts.keychain))
		})
	})
}

// fetchFailed forgets the client of creds after a fetch with it failed.
func (v *Verifier) fetchFailed(creds Credentials) {
	if creds.Keychain != nil {
		v.credClients.forget(creds.ID)
	}
}

// Verify checks one image against attestors. Per-attestor outcomes are in the
// result; it returns no error.
func (v *Verifier) Verify(ctx context.Context, img workload.Image, attestors []*policy.Attestor) Result {
	return v.Check(ctx, img, attestors, nil)
}

// Check is Verify that also looks, in the same fetch, for a vulnerability
// attestation signed by one of scanAttestors (needs WithAttestations).
func (v *Verifier) Check(ctx context.Context, img workload.Image, attestors, scanAttestors []*policy.Attestor) Result {
	return v.CheckWith(ctx, Credentials{}, img, attestors, scanAttestors)
}

// CheckWith is Check with a request's registry credentials. They are used on
// cache misses only: a cached digest or verdict is reused whoever asks (see
// docs/kubernetes.md, "Registry credentials").
func (v *Verifier) CheckWith(ctx context.Context, creds Credentials, img workload.Image, attestors, scanAttestors []*policy.Attestor) Result {
	start := time.Now()
	defer func() { v.metrics.latency.Observe(time.Since(start).Seconds()) }()
	res := Result{Image: img.Ref}
	all := func(o Outcome, reason string) Result {
		for _, a := range attestors {
			res.Attestors = append(res.Attestors, AttestorResult{Attestor: a.Metadata.Name, Outcome: o, Reason: reason})
		}
		return res
	}
	if img.Err != nil {
		return all(Unverifiable, "invalid image reference: "+img.Err.Error())
	}
	ref, err := v.refs.parse(img.Ref, v.opts.insecure)
	if err != nil {
		return all(Unverifiable, "invalid image reference: "+err.Error())
	}
	pl := v.pullerFor(creds)
	ctx, cancel := v.fetchContext(ctx)
	defer cancel()
	compiled := v.compileAhead(attestors)
	digest, err := v.digest(ctx, pl, creds.ID, img, ref)
	if err != nil {
		v.fetchFailed(creds)
		_, why := outcomeOf(err)
		return all(Unverifiable, why)
	}
	res.Digest = digest
	sigs, status, err := v.signatures(ctx, pl, creds.ID, ref.ref.Context(), ref.repoName+"@"+digest, digest)
	if err != nil {
		v.fetchFailed(creds)
		o, why := outcomeOf(err)
		return all(o, why)
	}
	res.Stale = status == cacheStale
	compiled()
	if len(scanAttestors) > 0 {
		res.Vuln = v.vuln(digest, sigs, scanAttestors)
	}
	res.Attestors = make([]AttestorResult, len(attestors))
	// A remembered verdict is a map lookup: only the attestors without one
	// (a cold or new definition) are checked.
	var todo []int
	for i, a := range attestors {
		if r, ok := v.cachedCheck(a, sigs); ok {
			res.Attestors[i] = r
		} else {
			todo = append(todo, i)
		}
	}
	v.checkShared(attestors, digest, sigs, todo, res.Attestors)
	return res
}

// checkShared checks the attestors todo indexes, into out. Signature checks
// are CPU work (an ECDSA verification is about a hundred microseconds), so
// they are shared out: this goroutine takes one attestor after another until
// none is left, and workers, one per core, take them too once the scheduler
// runs them. The wait is for the checks taken, not for the workers: one the
// scheduler starts late finds nothing left, and a busy machine costs the
// request nothing but the parallelism (a goroutine per attestor would run
// one after another on this core, each growing a new stack inside the
// libraries). There are as many workers as cores, not one fewer: Go keeps
// the goroutine created last for this core, to run when this goroutine
// waits, and another core takes it only after a pause (170 µs measured on a
// 2-core VM); the workers created before it are free to any idle core at
// once.
func (v *Verifier) checkShared(attestors []*policy.Attestor, digest string, sigs *signatures, todo []int, out []AttestorResult) {
	if len(todo) == 0 {
		return
	}
	var next atomic.Int64
	var taken sync.WaitGroup
	taken.Add(len(todo))
	work := func() {
		for {
			k := int(next.Add(1) - 1)
			if k >= len(todo) {
				return
			}
			i := todo[k]
			out[i] = v.check(attestors[i], digest, sigs, i)
			taken.Done()
		}
	}
	if n := min(runtime.GOMAXPROCS(0), len(todo)); n > 1 {
		for range n {
			go work()
		}
	}
	work()
	taken.Wait()
}

// compileAhead compiles the attestors seen for the first time while the
// registry is being asked: reading their keys and trust material is CPU work
// (tens of microseconds each) that need not wait for the signatures, and
// would otherwise come after them, one attestor after another. It returns a
// wait for it; with every attestor compiled (the warm path) it starts
// nothing.
func (v *Verifier) compileAhead(attestors []*policy.Attestor) (wait func()) {
	var todo []*policy.Attestor
	for _, a := range attestors {
		if _, ok := v.checks.load(a); !ok {
			todo = append(todo, a)
		}
	}
	if len(todo) == 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, a := range todo {
			v.verifierFor(a)
		}
	}()
	return func() { <-done }
}

// vuln is the vulnerability attestation outcome for these scan attestors.
// Like attestor verdicts, it is remembered with the signatures: a warm
// admission builds the key and nothing else.
func (v *Verifier) vuln(digest string, sigs *signatures, scanAttestors []*policy.Attestor) *VulnAttestation {
	var b strings.Builder
	for _, a := range scanAttestors {
		if k, _, err := v.verifierFor(a); err == nil {
			b.WriteString(k)
			b.WriteByte(0)
		}
	}
	key := b.String()
	sigs.mu.Lock()
	va, ok := sigs.vuln[key]
	sigs.mu.Unlock()
	if !ok {
		var pas []*policyAttestor
		for _, a := range scanAttestors {
			if _, ver, err := v.verifierFor(a); err == nil {
				pas = append(pas, &policyAttestor{name: a.Metadata.Name, ver: ver})
			}
		}
		va = v.vulnAttestation(digest, sigs, pas)
		sigs.mu.Lock()
		sigs.vuln[key] = va
		sigs.mu.Unlock()
	}
	return &va
}

func parse(ref string, insecure []string) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	for _, h := range insecure {
		if r.Context().RegistryStr() == h {
			return name.ParseReference(ref, name.Insecure)
		}
	}
	return r, nil
}

// digest returns the image's digest: as written, or what its tag resolves to.
func (v *Verifier) digest(ctx context.Context, pl pullerFunc, scope string, img workload.Image, ref *parsedRef) (string, error) {
	if img.Digest != "" {
		return img.Digest, nil
	}
	d, status, err := v.digests.get(ctx, ref.name, scope, func(string) time.Duration { return v.opts.digestTTL },
		func(ctx context.Context) (string, error) {
			release, err := v.fetchSlot(ctx, "resolving the tag")
			if err != nil {
				return "", err
			}
			defer release()
			d, err := v.head(ctx, pl, ref.ref)
			if err != nil {
				return "", timedOut(ctx, "resolving the tag", err)
			}
			return d, nil
		})
	v.metrics.cache.WithLabelValues("digest", status).Inc()
	return d, err
}

// head asks the registry what ref's tag names now.
func (v *Verifier) head(ctx context.Context, pl pullerFunc, ref name.Reference) (string, error) {
	p, err := pl()
	if err != nil {
		return "", &UnverifiableError{Reason: "registry credentials: " + err.Error(), Err: err}
	}
	desc, err := p.Head(ctx, ref)
	if err != nil {
		return "", registryError("resolving the tag", err)
	}
	return desc.Digest.String(), nil
}

// fetchSlot waits for one of the slots bounding the images fetched at once.
// A request's first image takes none (see sharedFetch): a pod with one image
// never queues behind pods with hundreds.
func (v *Verifier) fetchSlot(ctx context.Context, what string) (func(), error) {
	if ctx.Value(sharedFetchKey{}) == nil {
		return func() {}, nil
	}
	select {
	case v.fetches <- struct{}{}:
		return func() { <-v.fetches }, nil
	case <-ctx.Done():
		return nil, &UnverifiableError{Reason: what + ": timeout waiting for a registry fetch slot", Err: ctx.Err()}
	}
}

type sharedFetchKey struct{}

// sharedFetch marks the fetches of a request's further images (beyond the
// one it may always fetch) as taking a slot of the shared pool.
func sharedFetch(ctx context.Context) context.Context {
	return context.WithValue(ctx, sharedFetchKey{}, true)
}

// check is one attestor's verdict, computed once per (digest, attestor
// definition) and remembered with the signatures.
func (v *Verifier) check(a *policy.Attestor, digest string, s *signatures, start int) AttestorResult {
	if r, ok := v.cachedCheck(a, s); ok {
		return r
	}
	key, ver, _ := v.verifierFor(a) // cachedCheck answered any error
	verdict := ver.verify(digest, s, start)
	if _, ok := verdict.(*UnverifiableError); !ok {
		s.mu.Lock()
		s.verdict[key] = verdict
		s.mu.Unlock()
	}
	return attestorResult(a, verdict)
}

// cachedCheck is the attestor's verdict when it needs no verification: one
// remembered with the signatures, or the attestor's own definition error.
func (v *Verifier) cachedCheck(a *policy.Attestor, s *signatures) (AttestorResult, bool) {
	key, _, err := v.verifierFor(a)
	if err != nil {
		return AttestorResult{Attestor: a.Metadata.Name, Outcome: NotVerified, Reason: err.Error()}, true
	}
	s.mu.Lock()
	verdict, ok := s.verdict[key]
	s.mu.Unlock()
	if !ok {
		return AttestorResult{}, false
	}
	return attestorResult(a, verdict), true
}

func attestorResult(a *policy.Attestor, verdict error) AttestorResult {
	r := AttestorResult{Attestor: a.Metadata.Name}
	if verdict != nil {
		r.Outcome, r.Reason = outcomeOf(verdict)
	}
	return r
}

// verifierFor returns the attestor's compiled verifier and the key of its
// definition. Snapshot objects are immutable, so the pointer is remembered
// to keep the warm path free of hashing; a new pointer to a known
// definition (a policy reload) reuses its compiled verifier.
func (v *Verifier) verifierFor(a *policy.Attestor) (string, *verifier, error) {
	if c, ok := v.checks.load(a); ok {
		return c.key, c.ver, c.err
	}
	b, _ := json.Marshal(a.Spec)
	sum := sha256.Sum256(append([]byte(a.Metadata.Name+"\x00"), b...))
	key := hex.EncodeToString(sum[:])
	c, ok := v.checks.load(key)
	if !ok {
		c = &compiledAttestor{key: key}
		c.ver, c.err = newVerifier(a, v.public.get)
		v.checks.store(key, c)
	}
	v.checks.store(a, c)
	return c.key, c.ver, c.err
}

type compiledAttestor struct {
	key string
	ver *verifier
	err error
}

// Transport is the verifier's registry transport: plain HTTP only to
// loopback and the insecure registries, bounded bodies and requests per
// registry, retries within the deadline. Other readers of the same
// registries (policy bundles) share it.
func (v *Verifier) Transport() http.RoundTripper { return v.guard }
