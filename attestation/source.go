package attestation

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/imagegate/imagegate/facts"
)

// Source is a facts.Source whose signature facts are verified live; scan
// facts come from another source (a file, later the scan store), if any.
type Source struct {
	verifier *Verifier
	scans    facts.Source
	opts     sourceOptions
}

var _ facts.Source = (*Source)(nil)

// KeychainSource finds a pod's registry credentials (kube.PullSecrets); it
// returns nil when it knows none.
type KeychainSource interface {
	Keychain(namespace, serviceAccount string, pullSecrets []string) authn.Keychain
}

// SourceOption configures a Source.
type SourceOption func(*sourceOptions)

type sourceOptions struct {
	keychains KeychainSource
}

// WithPodCredentials takes each request's registry credentials from ks,
// before the verifier's own keychain.
func WithPodCredentials(ks KeychainSource) SourceOption {
	return func(o *sourceOptions) { o.keychains = ks }
}

// NewSource verifies with v and takes scan facts from scans (nil: none).
func NewSource(v *Verifier, scans facts.Source, opts ...SourceOption) *Source {
	s := &Source{verifier: v, scans: scans}
	for _, o := range opts {
		o(&s.opts)
	}
	return s
}

// credentials are the request's pod credentials, if a cluster is known.
func (s *Source) credentials(req facts.Request) Credentials {
	if s.opts.keychains == nil {
		return Credentials{}
	}
	kc := s.opts.keychains.Keychain(req.Namespace, req.ServiceAccount, req.PullSecrets)
	if kc == nil {
		return Credentials{}
	}
	return Credentials{Keychain: kc, ID: req.Namespace + "/" + req.ServiceAccount + "/" + strings.Join(req.PullSecrets, ",")}
}

// Facts verifies every image against the request's attestors, concurrently,
// within ctx's deadline.
func (s *Source) Facts(ctx context.Context, req facts.Request) ([]*facts.Image, error) {
	out := make([]*facts.Image, len(req.Images))
	if s.scans != nil {
		scanned, err := s.scans.Facts(ctx, req)
		if err != nil {
			return nil, err
		}
		for i, f := range scanned {
			out[i] = &facts.Image{Digest: f.Digest, Scan: f.Scan, Malicious: f.Malicious, MaliciousReason: f.MaliciousReason}
		}
	}
	for i := range out {
		if out[i] == nil {
			out[i] = &facts.Image{}
		}
	}
	if len(req.Attestors) == 0 && len(req.ScanAttestors) == 0 {
		return out, nil // no policy requires a signature here: no registry call
	}
	creds := s.credentials(req)
	if len(req.Images) == 1 { // most pods: no goroutine to wait for
		s.check(ctx, creds, req, 0, out[0])
		return out, nil
	}
	// A bounded number of workers: a pod with thousands of images must not
	// take every registry slot (nor thousands of goroutines) from the
	// requests beside it. The first worker fetches on the request's own
	// account, the others from the shared pool, so every request makes
	// progress however many large pods are being fetched.
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range min(len(req.Images), s.verifier.opts.requestConcurrency) {
		ctx := ctx
		if w > 0 {
			ctx = sharedFetch(ctx)
		}
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(req.Images); i = int(next.Add(1) - 1) {
				s.check(ctx, creds, req, i, out[i])
			}
		})
	}
	wg.Wait()
	return out, nil
}

// check verifies the request's image i into f.
func (s *Source) check(ctx context.Context, creds Credentials, req facts.Request, i int, f *facts.Image) {
	attestors := req.Attestors
	if i < len(req.ImageAttestors) {
		attestors = req.ImageAttestors[i]
	}
	if len(attestors) == 0 && len(req.ScanAttestors) == 0 {
		return // no policy governs this image: no registry call
	}
	r := s.verifier.CheckWith(ctx, creds, req.Images[i], attestors, req.ScanAttestors)
	if r.Digest != "" {
		f.Digest = r.Digest
	}
	s.vulnScan(f, r)
	for _, a := range r.Attestors {
		switch a.Outcome {
		case Verified:
			f.Attestors = append(f.Attestors, a.Attestor)
		case Unverifiable:
			f.Unverifiable = append(f.Unverifiable, a.Attestor)
			fallthrough
		default:
			if f.AttestorErrors == nil {
				f.AttestorErrors = map[string]string{}
			}
			f.AttestorErrors[a.Attestor] = a.Reason
		}
	}
}

// vulnScan takes a verified vulnerability attestation as the image's scan
// unless the scan store has a newer one, and notes why one was ignored.
func (s *Source) vulnScan(f *facts.Image, r Result) {
	if r.Vuln == nil {
		return
	}
	if r.Vuln.Predicate == nil {
		if r.Vuln.Reason != "no attestations found" {
			f.ScanNote = r.Vuln.Reason
		}
		return
	}
	scanned, note := r.Vuln.scan(time.Now())
	if note != "" {
		f.ScanNote = note
		return
	}
	if f.Scan == nil || scanned.ScannedAt.After(f.Scan.ScannedAt) {
		f.Scan = scanned
	}
}
