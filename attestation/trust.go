package attestation

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/imagegate/imagegate/policy"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	cosigntuf "github.com/sigstore/sigstore/pkg/tuf"
)

// trust is an attestor's Sigstore trust material, in the forms the libraries
// take. material (sigstore-go) verifies bundles always, and legacy
// signatures when the attestor names a trusted root. An attestor that still
// uses keyless.fulcioRoots/rekorPublicKey gets cosign's own root pool and
// Rekor keys for legacy signatures too, as `cosign verify --ca-roots` does,
// so the intermediates a signature carries in its chain keep counting.
type trust struct {
	material root.TrustedMaterial // nil: the attestor names none (keys only)
	public   func() (root.TrustedMaterial, error)
	roots    *x509.CertPool
	rekor    *cosign.TrustedTransparencyLogPubKeys
}

// resolve returns the trust material, fetching the public instance's on
// first use: failing to is "could not verify", not a verdict.
func (t *trust) resolve() (root.TrustedMaterial, error) {
	if t.public == nil {
		return t.material, nil
	}
	tm, err := t.public()
	if err != nil {
		return nil, &UnverifiableError{Reason: "public Sigstore trust root unavailable (TUF)", Err: err}
	}
	return tm, nil
}

// vouchers says whether the trust material holds a Rekor log and a
// timestamp authority.
func (t *trust) vouchers() (rekor, tsa bool, err error) {
	tm, err := t.resolve()
	if err != nil || tm == nil {
		return t.rekor != nil, false, err
	}
	return len(tm.RekorLogs()) > 0, len(tm.TimestampingAuthorities()) > 0, nil
}

// trustFor reads the attestor's trust material. publicRoot returns the
// public Sigstore instance's root, fetched (or read from the TUF cache) on
// first use.
func trustFor(a *policy.Attestor, publicRoot func() (root.TrustedMaterial, error)) (*trust, error) {
	s := &a.Spec
	var tm root.TrustedMaterial
	var err error
	switch {
	case s.TrustedRoot != "":
		tm, err = root.NewTrustedRootFromJSON([]byte(s.TrustedRoot))
		if err != nil {
			return nil, fmt.Errorf("spec.trustedRoot: %w", err)
		}
	case s.TrustedRootFile != "":
		tm, err = root.NewTrustedRootFromPath(s.TrustedRootFile)
		if err != nil {
			return nil, fmt.Errorf("spec.trustedRootFile: %w", err)
		}
	case s.PublicSigstore:
		return &trust{public: publicRoot}, nil
	case s.Keyless != nil && (s.Keyless.FulcioRoots != "" || s.Keyless.RekorPublicKey != ""):
		return legacyTrust(s.Keyless)
	default:
		return &trust{}, nil
	}
	return &trust{material: tm}, nil
}

// legacyTrust turns keyless.fulcioRoots and keyless.rekorPublicKey into
// cosign's root pool and Rekor keys, and into a trusted root (no validity
// windows: the fields never had any) for Sigstore bundles.
func legacyTrust(k *policy.Keyless) (*trust, error) {
	t := &trust{roots: x509.NewCertPool()}
	var roots, inters []*x509.Certificate
	for rest := []byte(k.FulcioRoots); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("spec.keyless.fulcioRoots: %w", err)
		}
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			roots = append(roots, c)
			t.roots.AddCert(c)
		} else {
			inters = append(inters, c)
		}
	}
	var cas []root.CertificateAuthority
	for _, r := range roots {
		cas = append(cas, &root.FulcioCertificateAuthority{Root: r, Intermediates: inters})
	}
	logs := map[string]*root.TransparencyLog{}
	if k.RekorPublicKey != "" {
		pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(k.RekorPublicKey))
		if err != nil {
			return nil, fmt.Errorf("spec.keyless.rekorPublicKey: %w", err)
		}
		id, err := cosign.GetTransparencyLogID(pub)
		if err != nil {
			return nil, fmt.Errorf("spec.keyless.rekorPublicKey: %w", err)
		}
		keys := cosign.NewTrustedTransparencyLogPubKeys()
		if err := keys.AddTransparencyLogPubKey([]byte(k.RekorPublicKey), cosigntuf.Active); err != nil {
			return nil, fmt.Errorf("spec.keyless.rekorPublicKey: %w", err)
		}
		t.rekor = &keys
		raw, _ := hex.DecodeString(id)
		logs[id] = &root.TransparencyLog{ID: raw, PublicKey: pub, HashFunc: crypto.SHA256, SignatureHashFunc: crypto.SHA256}
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, nil, nil, logs)
	if err != nil {
		return nil, err
	}
	t.material = tr
	return t, nil
}

// publicSigstore fetches the public Sigstore instance's trusted root through
// sigstore-go's TUF client: its embedded TUF root, an on-disk cache (so a
// restart without network works once cached), and a daily refresh. The
// fetch runs in the background: an admission waits for it at most
// publicWait, so an unreachable TUF repository costs "could not verify", not
// the request's deadline. A failed fetch is retried at most once a minute.
type publicSigstore struct {
	cacheDir string
	now      func() time.Time

	mu       sync.Mutex
	tm       root.TrustedMaterial
	err      error
	failed   time.Time
	fetching chan struct{} // closed when the fetch in flight ends
}

const publicWait = 2 * time.Second

var errTUFPending = errors.New("still being fetched from the TUF repository")

func (p *publicSigstore) get() (root.TrustedMaterial, error) {
	p.mu.Lock()
	if p.tm != nil {
		defer p.mu.Unlock()
		return p.tm, nil
	}
	if p.fetching == nil && (p.err == nil || p.now().Sub(p.failed) >= time.Minute) {
		p.fetching = make(chan struct{})
		go p.fetch(p.fetching)
	}
	done := p.fetching
	p.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-time.After(publicWait):
			return nil, errTUFPending
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tm != nil {
		return p.tm, nil
	}
	if p.err == nil {
		return nil, errTUFPending
	}
	return nil, p.err
}

func (p *publicSigstore) fetch(done chan struct{}) {
	opts := tuf.DefaultOptions()
	if p.cacheDir != "" {
		opts = opts.WithCachePath(p.cacheDir)
	}
	// Use the cache while its metadata is valid: admission must not wait on
	// the TUF repository when it need not.
	opts = opts.WithForceCache()
	tm, err := root.NewLiveTrustedRoot(opts)
	p.mu.Lock()
	if err != nil {
		p.err, p.failed = err, p.now()
	} else {
		p.tm, p.err = tm, nil
	}
	p.fetching = nil
	p.mu.Unlock()
	close(done)
}
