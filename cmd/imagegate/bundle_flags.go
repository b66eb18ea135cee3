package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imagegate/imagegate/bundle"
	"github.com/imagegate/imagegate/policy"
	"github.com/prometheus/client_golang/prometheus"
)

// defaultBundlePoll is how often serve asks the registry for a new bundle
// digest when --policy-poll-interval is not given (2s suits files, not a
// registry shared by every cluster).
const defaultBundlePoll = 30 * time.Second

// bundleFlags select the key that vouches for policy bundles
// (--policy-source=oci://REF, check --policies oci://REF) and bound them.
type bundleFlags struct {
	key, attestorFile, attestorName string
	maxBytes                        int64
	maxLayers                       int
	poll                            time.Duration

	watcher *bundle.Watcher // serve's, once started
}

func (b *bundleFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.key, "policy-key", "", "PEM public key (cosign.pub) whose cosign signature a policy bundle (oci://REF) must carry")
	fs.StringVar(&b.attestorFile, "policy-attestor-file", "", "file or directory of Attestor documents, one of which (--policy-attestor) must have signed a policy bundle (oci://REF); for keyless signers, trust roots, a required transparency log")
	fs.StringVar(&b.attestorName, "policy-attestor", "", "the Attestor of --policy-attestor-file that vouches for policy bundles (needed when the file has more than one)")
	fs.Int64Var(&b.maxBytes, "policy-bundle-max-bytes", bundle.DefaultMaxBytes, "largest policy bundle read (its layers together)")
	fs.IntVar(&b.maxLayers, "policy-bundle-max-layers", bundle.DefaultMaxLayers, "most layers (files) of a policy bundle read")
}

// resolve checks the flags against the policy source (a directory, kube,
// or oci://REF) and picks the poll interval; it returns a usage message or "".
func (b *bundleFlags) resolve(fs *flag.FlagSet, source string, poll time.Duration) string {
	if !bundle.IsRef(source) {
		if b.key != "" || b.attestorFile != "" || b.attestorName != "" {
			return "--policy-key, --policy-attestor-file and --policy-attestor need a policy bundle (oci://REF)"
		}
		return ""
	}
	b.poll = defaultBundlePoll
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "policy-poll-interval" {
			b.poll = poll
		}
	})
	if _, err := bundle.ParseRef(source); err != nil {
		return err.Error()
	}
	switch {
	case b.key == "" && b.attestorFile == "":
		return "a policy bundle (oci://REF) needs --policy-key or --policy-attestor-file: the key that signs bundles comes from local configuration, never from a bundle"
	case b.key != "" && b.attestorFile != "":
		return "--policy-key and --policy-attestor-file exclude each other"
	case b.attestorName != "" && b.attestorFile == "":
		return "--policy-attestor needs --policy-attestor-file"
	case b.maxBytes <= 0 || b.maxLayers <= 0:
		return "--policy-bundle-max-bytes and --policy-bundle-max-layers must be positive"
	}
	return ""
}

// attestor is the Attestor that vouches for bundles, from local files only.
func (b *bundleFlags) attestor() (*policy.Attestor, error) {
	if b.key != "" {
		pem, err := os.ReadFile(b.key)
		if err != nil {
			return nil, fmt.Errorf("--policy-key: %w", err)
		}
		a := &policy.Attestor{TypeMeta: policy.TypeMeta{APIVersion: policy.APIVersion, Kind: policy.KindAttestor},
			Metadata: policy.ObjectMeta{Name: "policy-bundle"},
			// Bundles signed with a key are usually not in a transparency log
			// (imagegate policy push does not upload); one that is, is checked.
			Spec: policy.AttestorSpec{PublicKeys: []string{string(pem)}, TransparencyLog: policy.ModeOptional}}
		if _, err := policy.NewSnapshot(a); err != nil {
			return nil, fmt.Errorf("--policy-key %s: %w", b.key, err)
		}
		return a, nil
	}
	snap, err := policy.LoadDir(b.attestorFile)
	if err != nil {
		return nil, fmt.Errorf("--policy-attestor-file: %w", err)
	}
	if len(snap.Policies()) > 0 || len(snap.Strategies()) > 0 {
		return nil, fmt.Errorf("--policy-attestor-file %s: holds BinarySecurityPolicies or OpaStrategies; it should hold only the Attestor of policy bundles", b.attestorFile)
	}
	atts := snap.Attestors()
	if b.attestorName != "" {
		a, ok := snap.Attestor(b.attestorName)
		if !ok {
			return nil, fmt.Errorf("--policy-attestor %q: no Attestor of that name in %s", b.attestorName, b.attestorFile)
		}
		return a, nil
	}
	if len(atts) != 1 {
		return nil, fmt.Errorf("--policy-attestor-file %s: %d Attestors; name one with --policy-attestor", b.attestorFile, len(atts))
	}
	return atts[0], nil
}

// source is the bundle reader of ref, verifying with its own verifier (the
// registry flags of vf, separate caches).
func (b *bundleFlags) source(ref string, vf *verifierFlags) (*bundle.Source, error) {
	a, err := b.attestor()
	if err != nil {
		return nil, err
	}
	v, err := vf.build(nil)
	if err != nil {
		return nil, err
	}
	return bundle.NewSource(ref, a, v, bundle.WithInsecureRegistries(vf.insecure...),
		bundle.WithMaxBytes(b.maxBytes), bundle.WithMaxLayers(b.maxLayers),
		// The verifier's transport retries within the deadline; the
		// registry client's own retries would wait seconds on top.
		bundle.WithRemoteOptions(remote.WithTransport(v.Transport()), remote.WithAuthFromKeychain(authn.DefaultKeychain),
			remote.WithUserAgent("imagegate"), remote.WithRetryBackoff(remote.Backoff{Steps: 1})))
}

// load reads, verifies and validates the bundle ref names now (check).
func (b *bundleFlags) load(ctx context.Context, ref string, vf *verifierFlags, timeout time.Duration) (*policy.Snapshot, error) {
	src, err := b.source(ref, vf)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d, err := src.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	bu, err := src.Load(ctx, d)
	if err != nil {
		return nil, err
	}
	return bu.Snapshot, nil
}

// start watches the bundle when the policy source is oci://REF; it reports
// whether it did.
func (b *bundleFlags) start(ctx context.Context, source string, vf *verifierFlags, log *slog.Logger, onLoad func(*policy.Snapshot, error)) (bool, error) {
	if !bundle.IsRef(source) {
		return false, nil
	}
	src, err := b.source(source, vf)
	if err != nil {
		return false, err
	}
	b.watcher = bundle.NewWatcher(src)
	log.Info("policy bundle watched", "ref", src.Ref(), "poll_interval", b.poll.String())
	go b.watcher.Watch(ctx, b.poll, onLoad)
	return true, nil
}

// status is the bundle's readiness line: why the reference's current
// digest is not in force; "" when it is or there is no bundle.
func (b *bundleFlags) status() string {
	if b.watcher == nil {
		return ""
	}
	return b.watcher.Status()
}

// reloadCounter counts policy loads by source and result.
type reloadCounter struct {
	c      *prometheus.CounterVec
	source string
}

func newReloadCounter(reg prometheus.Registerer, source string) *reloadCounter {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "imagegate_policy_reloads_total",
		Help: "Policy set loads by source (file, kube, oci) and result (ok; unverified: a bundle's signature; invalid: the set or bundle refused; empty: an empty set refused; error: the source could not be read).",
	}, []string{"source", "result"})
	reg.MustRegister(c)
	if bundle.IsRef(source) {
		source = "oci"
	}
	// Every result at zero up front: increase() cannot see a series whose
	// first sample is already 1.
	for _, result := range []string{"ok", "unverified", "invalid", "empty", "error"} {
		c.WithLabelValues(source, result)
	}
	return &reloadCounter{c: c, source: source}
}

func (r *reloadCounter) observe(err error) {
	var pe policy.Errors
	result := bundle.Result(err)
	switch {
	case errors.Is(err, policy.ErrEmptySet):
		result = "empty"
	case errors.As(err, &pe):
		result = "invalid"
	}
	r.c.WithLabelValues(r.source, result).Inc()
}

// loadPolicies loads check's --policies: a directory, or a bundle
// (oci://REF) verified as serve verifies it.
func (b *bundleFlags) loadPolicies(ctx context.Context, fs *flag.FlagSet, policies string, vf *verifierFlags, timeout time.Duration) (*policy.Snapshot, error) {
	if msg := b.resolve(fs, policies, 0); msg != "" {
		return nil, errors.New(msg)
	}
	if !bundle.IsRef(policies) {
		return policy.LoadDir(policies)
	}
	return b.load(ctx, policies, vf, timeout)
}
