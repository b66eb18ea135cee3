package bundle

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imagegate/imagegate/attestation"
	"github.com/imagegate/imagegate/attestation/attestationtest"
	"github.com/imagegate/imagegate/policy"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/signature"
)

const strategies = `apiVersion: imagegate.dev/v1alpha1
kind: OpaStrategy
metadata: {name: block-unscanned}
spec:
  strategyId: 7
  strategyName: block-unscanned
  clusterId: prod
  unScanedImage: true
  ruleAction: block
`

// writeDir writes a policy directory: file name to content.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type fixture struct {
	reg      *attestationtest.Registry
	key      *ecdsa.PrivateKey
	signer   signature.SignerVerifier
	verifier *attestation.Verifier
	attestor *policy.Attestor
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	key := attestationtest.ECKey(t, elliptic.P256())
	sv, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	v, err := attestation.New(attestation.WithNegativeTTL(time.Millisecond), attestation.WithRetries(0, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	a := attestationtest.KeyAttestor(t, "policy-bundle", key)
	return &fixture{reg: attestationtest.NewRegistry(t), key: key, signer: sv, verifier: v, attestor: a}
}

func (f *fixture) source(t *testing.T, ref string, opts ...Option) *Source {
	t.Helper()
	s, err := NewSource(ref, f.attestor, f.verifier, append(opts, WithRemoteOptions(remote.WithTransport(f.verifier.Transport()), remote.WithRetryBackoff(remote.Backoff{Steps: 1})))...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// push packs dir, pushes it under tag and signs it with sv (nil: unsigned).
func (f *fixture) push(t *testing.T, dir, tag string, sv signature.SignerVerifier) string {
	t.Helper()
	b, err := Pack(dir)
	if err != nil {
		t.Fatal(err)
	}
	return f.pushBundle(t, b, tag, sv)
}

func (f *fixture) pushBundle(t *testing.T, b *Bundle, tag string, sv signature.SignerVerifier) string {
	t.Helper()
	d, err := b.Push(context.Background(), Scheme+f.reg.Host+"/policies:"+tag)
	if err != nil {
		t.Fatal(err)
	}
	if sv != nil {
		if err := Sign(context.Background(), d, sv); err != nil {
			t.Fatal(err)
		}
	}
	return d.DigestStr()
}

func TestRoundTrip(t *testing.T) {
	f := newFixture(t)
	dir := "../examples/policies"
	b1, err := Pack(dir)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := Pack(dir)
	if b1.Digest != b2.Digest {
		t.Fatalf("the same files made digests %s and %s", b1.Digest, b2.Digest)
	}
	digest := f.pushBundle(t, b1, "v1", f.signer)
	if digest != b1.Digest.String() {
		t.Fatalf("pushed %s, packed %s", digest, b1.Digest)
	}
	src := f.source(t, Scheme+f.reg.Host+"/policies:v1")
	d, err := src.Resolve(context.Background())
	if err != nil || d.DigestStr() != digest {
		t.Fatalf("resolved %v, %v; want %s", d, err, digest)
	}
	got, err := src.Load(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := policy.LoadDir(dir)
	if got.Snapshot.Digest() != want.Digest() {
		t.Fatalf("snapshot %s, want %s (as loaded from %s)", got.Snapshot.Digest(), want.Digest(), dir)
	}
	var names []string
	for _, f := range got.Files {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "attestors.yaml,signature-policy.yaml,strategies.yaml" {
		t.Fatalf("files %v", names)
	}
}

func TestPackRefusesInvalidSet(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"ok.yaml":  strategies,
		"bad.yaml": strings.Replace(strings.Replace(strategies, "ruleAction: block", "ruleAction: explode", 1), "strategyId: 7", "strategyId: 8", 1),
	})
	_, err := Pack(dir)
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v, want an InvalidError", err)
	}
	for _, want := range []string{"bad.yaml", "spec.ruleAction", "explode"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestPackBounds(t *testing.T) {
	dir := writeDir(t, map[string]string{"a.yaml": strategies, "b.yaml": "# nothing\n"})
	tests := []struct {
		name string
		opt  Option
		what string
	}{
		{"layers", WithMaxLayers(1), "layers"},
		{"bytes", WithMaxBytes(int64(len(strategies))), "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Pack(dir, tt.opt)
			var le *LimitError
			if !errors.As(err, &le) || le.What != tt.what {
				t.Fatalf("got %v, want a LimitError on %s", err, tt.what)
			}
		})
	}
}

// TestLoadRefuses is the attacks on a bundle: each must be refused with its
// own class of error, before anything of the bundle is used.
func TestLoadRefuses(t *testing.T) {
	f := newFixture(t)
	other, _ := signature.LoadECDSASignerVerifier(attestationtest.ECKey(t, elliptic.P256()), crypto.SHA256)
	good := writeDir(t, map[string]string{"s.yaml": strategies})
	three := writeDir(t, map[string]string{"a.yaml": strategies, "b/c.yaml": "# empty\n", "d.yaml": "# empty\n"})
	invalid, err := assemble([]policy.File{{Name: "bad.yaml", Data: []byte(strings.Replace(strategies, "ruleAction: block", "ruleAction: explode", 1))}}, mustSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	signedDigest := f.push(t, good, "signed", f.signer)
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the tag to load
		opts  []Option
		check func(error) bool
		want  string
	}{
		{"unsigned", func(t *testing.T) string {
			f.push(t, writeDir(t, map[string]string{"s.yaml": strategies + "# unsigned\n"}), "unsigned", nil)
			return "unsigned"
		},
			nil, isUnverified, "no signatures"},
		{"another key", func(t *testing.T) string {
			f.push(t, writeDir(t, map[string]string{"s.yaml": strategies + "# other\n"}), "other", other)
			return "other"
		},
			nil, isUnverified, ""},
		{"signature of another digest replayed", func(t *testing.T) string {
			d := f.push(t, writeDir(t, map[string]string{"s.yaml": strategies + "# replayed\n"}), "replayed", nil)
			f.reg.Copy(t, f.reg.Host+"/policies:"+sigTag(signedDigest), f.reg.Host+"/policies:"+sigTag(d))
			return "replayed"
		}, nil, isUnverified, ""},
		{"invalid policies, signed", func(t *testing.T) string { f.pushBundle(t, invalid, "invalid", f.signer); return "invalid" },
			nil, isInvalid, "bad.yaml"},
		{"not a bundle, signed", func(t *testing.T) string {
			_, d := f.reg.Push(t, "policies", "image")
			f.reg.Sign(t, "policies", d, f.key)
			return "image"
		}, nil, isMalformed, "not a policy bundle"},
		{"too many layers", func(t *testing.T) string { f.push(t, three, "three", f.signer); return "three" },
			[]Option{WithMaxLayers(2)}, isLimit, "3 layers"},
		{"too many bytes", func(t *testing.T) string { return "signed" },
			[]Option{WithMaxBytes(10)}, isLimit, "bytes"},
		{"tampered layer", func(t *testing.T) string {
			dir := writeDir(t, map[string]string{"s.yaml": strategies + "# tampered\n"})
			b, err := Pack(dir)
			if err != nil {
				t.Fatal(err)
			}
			f.pushBundle(t, b, "tampered", f.signer)
			target := "/blobs/" + descriptor(b.Files[0].Data, LayerMediaType, nil).Digest.String()
			f.reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, target) {
					_, _ = w.Write([]byte(strings.Replace(strategies, "block", "allow", 1) + "# tampered\n"))
					return true
				}
				return false
			})
			return "tampered"
		}, nil, isMalformed, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer f.reg.SetFault(nil)
			tag := tt.setup(t)
			src := f.source(t, Scheme+f.reg.Host+"/policies:"+tag, tt.opts...)
			d, err := src.Resolve(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			b, err := src.Load(context.Background(), d)
			if b != nil || !tt.check(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("loaded %t, error %v; want a refusal mentioning %q", b != nil, err, tt.want)
			}
		})
	}
}

func sigTag(digest string) string { return strings.Replace(digest, ":", "-", 1) + ".sig" }

func mustSnapshot(t *testing.T) *policy.Snapshot {
	s, err := policy.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func isUnverified(err error) bool { var e *UnverifiedError; return errors.As(err, &e) }
func isInvalid(err error) bool    { var e *InvalidError; return errors.As(err, &e) }
func isMalformed(err error) bool  { var e *MalformedError; return errors.As(err, &e) }
func isLimit(err error) bool      { var e *LimitError; return errors.As(err, &e) }

// TestLoadKey signs with a key in cosign's encrypted format, made by the
// cosign library as cosign generate-key-pair makes it.
func TestLoadKey(t *testing.T) {
	f := newFixture(t)
	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cosign.key")
	if err := os.WriteFile(path, keys.PrivateBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path, []byte("wrong")); err == nil {
		t.Fatal("a wrong password loaded the key")
	}
	sv, err := LoadKey(path, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	f.attestor.Spec.PublicKeys = []string{string(keys.PublicBytes)}
	f.push(t, writeDir(t, map[string]string{"s.yaml": strategies}), "cosign-key", sv)
	src := f.source(t, Scheme+f.reg.Host+"/policies:cosign-key")
	d, err := src.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Load(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}
