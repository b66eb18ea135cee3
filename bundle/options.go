package bundle

import (
	"fmt"
	"net"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Option configures Pack, Push, Sign and NewSource.
type Option func(*options)

type options struct {
	maxBytes  int64
	maxLayers int
	timeout   time.Duration
	insecure  []string
	remote    []remote.Option
}

func defaults() options {
	return options{maxBytes: DefaultMaxBytes, maxLayers: DefaultMaxLayers, timeout: DefaultTimeout}
}

func apply(opts []Option) options {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithMaxBytes bounds the layers of a bundle together (DefaultMaxBytes).
func WithMaxBytes(n int64) Option { return func(o *options) { o.maxBytes = n } }

// WithMaxLayers bounds the layers (files) of a bundle (DefaultMaxLayers).
func WithMaxLayers(n int) Option { return func(o *options) { o.maxLayers = n } }

// WithTimeout bounds one check of a Watcher: resolving the tag, verifying
// and reading a bundle (DefaultTimeout). A registry that stops answering
// cannot stall the watch.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithInsecureRegistries lets these registries (host or host:port) be
// reached over plain HTTP; loopback ones always may.
func WithInsecureRegistries(hosts ...string) Option {
	return func(o *options) { o.insecure = append(o.insecure, hosts...) }
}

// WithRemoteOptions passes options (transport, keychain) to the registry client.
func WithRemoteOptions(ro ...remote.Option) Option {
	return func(o *options) { o.remote = append(o.remote, ro...) }
}

func (o *options) validate() error {
	if o.timeout <= 0 {
		return fmt.Errorf("policy bundle timeout must be positive, not %v", o.timeout)
	}
	if o.maxBytes <= 0 || o.maxLayers <= 0 {
		return fmt.Errorf("policy bundle bounds must be positive (max bytes %d, max layers %d)", o.maxBytes, o.maxLayers)
	}
	return nil
}

// ParseRef parses a bundle reference, with or without oci://. Plain HTTP is
// allowed for loopback registries and the insecure ones.
func ParseRef(ref string, insecure ...string) (name.Reference, error) {
	s := ref
	if IsRef(s) {
		s = s[len(Scheme):]
	}
	r, err := name.ParseReference(s, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("policy bundle reference %q: %w (expected oci://REGISTRY/REPOSITORY:TAG or @sha256:DIGEST)", ref, err)
	}
	host := r.Context().RegistryStr()
	plain := isLoopback(host)
	for _, h := range insecure {
		plain = plain || h == host
	}
	if plain {
		return name.ParseReference(s, name.StrictValidation, name.Insecure)
	}
	return r, nil
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
