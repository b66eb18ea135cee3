package attestation

import (
	"errors"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/prometheus/client_golang/prometheus"
)

// Option configures a Verifier.
type Option func(*options)

type options struct {
	keychain     authn.Keychain
	insecure     []string
	transport    http.RoundTripper
	ttl          time.Duration
	negativeTTL  time.Duration
	digestTTL    time.Duration
	staleIfError time.Duration
	cacheSize    int
	perRegistry  int
	retries      int
	backoff      time.Duration
	maxBytes     int64
	registerer   prometheus.Registerer
	now          func() time.Time
	attestations bool

	maxLayers        int
	maxReferrerBytes int64
	cacheBytes       int64
	tufCacheDir      string

	// reserve is kept of a request's deadline for the decision after the
	// registry fetches: at least reserveFloor, reserveFraction of the time
	// left when more.
	reserveFraction float64
	reserveFloor    time.Duration

	// Images fetched from registries at once: in all, and for one request.
	fetchConcurrency, requestConcurrency int
	maxRegistryLabels                    int
}

// Defaults, in one place.
const (
	DefaultTTL          = 5 * time.Minute
	DefaultNegativeTTL  = 30 * time.Second
	DefaultDigestTTL    = 30 * time.Second
	DefaultStaleIfError = time.Hour
	DefaultCacheSize    = 10000
	DefaultPerRegistry  = 16
	DefaultRetries      = 2
	DefaultMaxBytes     = 4 << 20
	// DefaultMaxLayers bounds the layers read from an image's .sig or .att
	// image: cosign adds one per signature.
	DefaultMaxLayers = 64
	// DefaultMaxReferrerBytes bounds what is read of an image's referrers.
	DefaultMaxReferrerBytes = 8 << 20
	// DefaultCacheBytes bounds the signature material the cache holds.
	DefaultCacheBytes = 64 << 20
	// DefaultReserveFraction and DefaultReserveFloor: registry fetches get
	// a request's time left less max(15 %, 100 ms), so that a slow registry
	// still leaves time to decide with the typed timeout, stale results or
	// --on-verification-error.
	DefaultReserveFraction = 0.15
	DefaultReserveFloor    = 100 * time.Millisecond
	// DefaultFetchConcurrency bounds the images fetched from registries at
	// once, over all requests; DefaultRequestConcurrency those of one
	// request, so that a pod with many images cannot take every slot from
	// the other requests.
	DefaultFetchConcurrency   = 64
	DefaultRequestConcurrency = 8
	// DefaultMaxRegistryLabels bounds the registry label of the request
	// metrics; registries seen after that many are counted as "other".
	DefaultMaxRegistryLabels = 100
	// DefaultClientReuse is how many registry fetches share one registry
	// client (which keeps a reader and token per repository, forever)
	// before a fresh one replaces it.
	DefaultClientReuse = 1000
	// DefaultMaxAttestors bounds the compiled attestors remembered (by
	// pointer and by definition, per generation; see compiledAttestors).
	DefaultMaxAttestors = 256
)

func defaults() options {
	return options{
		keychain: authn.DefaultKeychain, transport: http.DefaultTransport,
		ttl: DefaultTTL, negativeTTL: DefaultNegativeTTL, digestTTL: DefaultDigestTTL, staleIfError: DefaultStaleIfError,
		cacheSize: DefaultCacheSize, perRegistry: DefaultPerRegistry, retries: DefaultRetries,
		backoff: 200 * time.Millisecond, maxBytes: DefaultMaxBytes, now: time.Now,
		maxLayers: DefaultMaxLayers, maxReferrerBytes: DefaultMaxReferrerBytes, cacheBytes: DefaultCacheBytes,
		reserveFraction: DefaultReserveFraction, reserveFloor: DefaultReserveFloor,
		fetchConcurrency: DefaultFetchConcurrency, requestConcurrency: DefaultRequestConcurrency,
		maxRegistryLabels: DefaultMaxRegistryLabels,
	}
}

// WithKeychain sets where registry credentials come from (default: the
// docker config file, $DOCKER_CONFIG or ~/.docker/config.json).
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// WithInsecureRegistries allows plain HTTP to these registries (host or
// host:port) besides loopback ones.
func WithInsecureRegistries(hosts ...string) Option {
	return func(o *options) { o.insecure = append(o.insecure, hosts...) }
}

// WithTransport sets the underlying HTTP transport.
func WithTransport(t http.RoundTripper) Option { return func(o *options) { o.transport = t } }

// WithCacheTTL sets how long a verified (or failed) signature check is reused.
func WithCacheTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithNegativeTTL sets how long "no signatures found" is reused: short, so a
// signature pushed after the image shows up soon.
func WithNegativeTTL(d time.Duration) Option { return func(o *options) { o.negativeTTL = d } }

// WithDigestTTL sets how long a tag's resolved digest is reused.
func WithDigestTTL(d time.Duration) Option { return func(o *options) { o.digestTTL = d } }

// WithStaleIfError serves a result up to d past its TTL when the registry
// cannot be reached.
func WithStaleIfError(d time.Duration) Option { return func(o *options) { o.staleIfError = d } }

// WithCacheSize bounds each cache (digests, signatures) to n entries.
func WithCacheSize(n int) Option { return func(o *options) { o.cacheSize = n } }

// WithRegistryConcurrency bounds concurrent requests to one registry.
func WithRegistryConcurrency(n int) Option { return func(o *options) { o.perRegistry = n } }

// WithRetries sets how often a 429 or 5xx answer is retried (within the
// request's deadline), starting after backoff and doubling.
func WithRetries(n int, backoff time.Duration) Option {
	return func(o *options) { o.retries, o.backoff = n, backoff }
}

// WithMaxResponseBytes bounds every registry response body.
func WithMaxResponseBytes(n int64) Option { return func(o *options) { o.maxBytes = n } }

// WithRegisterer registers the verifier's metrics.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithAttestations also fetches each image's cosign attestations (the
// sha256-<digest>.att image) with its signatures, in the same cached fetch.
func WithAttestations(on bool) Option { return func(o *options) { o.attestations = on } }

// WithMaxSignatureLayers bounds the layers read from an image's .sig or .att
// image; an image with more does not verify.
func WithMaxSignatureLayers(n int) Option { return func(o *options) { o.maxLayers = n } }

// WithMaxReferrerBytes bounds the bytes read of one image's referrers
// (Sigstore bundles).
func WithMaxReferrerBytes(n int64) Option { return func(o *options) { o.maxReferrerBytes = n } }

// WithCacheBytes bounds the signature material held by the cache.
func WithCacheBytes(n int64) Option { return func(o *options) { o.cacheBytes = n } }

// WithTUFCacheDir sets where the public Sigstore instance's TUF metadata and
// trusted root are cached (default: $HOME/.sigstore/root).
func WithTUFCacheDir(dir string) Option { return func(o *options) { o.tufCacheDir = dir } }

// WithDecisionReserve keeps part of a request's deadline from the registry
// fetches: max(fraction of the time left, floor), at most half of it.
func WithDecisionReserve(fraction float64, floor time.Duration) Option {
	return func(o *options) { o.reserveFraction, o.reserveFloor = fraction, floor }
}

// WithFetchConcurrency bounds the images whose signatures (or tag) are
// being fetched at once: perRequest for one request (Source), and total
// over all requests for their images beyond the first, which each request
// fetches on its own account so that it never queues behind large pods.
// Cache hits take no slot.
func WithFetchConcurrency(total, perRequest int) Option {
	return func(o *options) { o.fetchConcurrency, o.requestConcurrency = total, perRequest }
}

// WithMaxRegistryLabels bounds the distinct registry label values of the
// request metrics; later registries are counted as "other".
func WithMaxRegistryLabels(n int) Option { return func(o *options) { o.maxRegistryLabels = n } }

// WithClock sets the clock for cache ages.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

func (o *options) validate() error {
	switch {
	case o.keychain == nil || o.transport == nil || o.now == nil:
		return errors.New("attestation: keychain, transport and clock must not be nil")
	case o.ttl <= 0 || o.negativeTTL <= 0 || o.digestTTL <= 0:
		return errors.New("attestation: cache TTLs must be positive")
	case o.negativeTTL > o.ttl:
		return errors.New("attestation: the negative TTL must not exceed the TTL")
	case o.staleIfError < 0 || o.retries < 0 || o.backoff < 0:
		return errors.New("attestation: stale-if-error, retries and backoff must not be negative")
	case o.cacheSize <= 0 || o.perRegistry <= 0 || o.maxBytes <= 0:
		return errors.New("attestation: cache size, registry concurrency and response bound must be positive")
	case o.reserveFraction < 0 || o.reserveFraction >= 1 || o.reserveFloor < 0:
		return errors.New("attestation: the decision reserve must be a fraction in [0, 1) and a non-negative floor")
	case o.fetchConcurrency <= 0 || o.requestConcurrency <= 0:
		return errors.New("attestation: fetch concurrency must be positive")
	case o.maxRegistryLabels < 0:
		return errors.New("attestation: registry label bound must not be negative")
	case o.maxLayers <= 0 || o.maxReferrerBytes <= 0 || o.cacheBytes <= 0:
		return errors.New("attestation: signature layer, referrer and cache byte bounds must be positive")
	}
	return nil
}
