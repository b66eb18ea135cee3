package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"time"

	st "github.com/imagegate/imagegate/test/e2e/sigstoretest"
)

// payload is the simple-signing payload cosign signs for img.
func payload(img diffImage) []byte {
	return st.SimpleSigning(img.repo.Name(), img.digest, st.SimpleSigningType)
}

// pushSigned pushes each signature as a layer of img's .sig image.
func pushSigned(img diffImage, sigs ...*st.Signed) error {
	var ls []st.LegacySig
	for _, s := range sigs {
		l, err := s.Legacy()
		if err != nil {
			return err
		}
		ls = append(ls, l)
	}
	return st.PushLegacy(img.repo, img.digest, ls...)
}

// keySig signs img's payload with key and pushes it, after edit.
func keySig(key crypto.Signer, hash crypto.Hash, edit func(f *diffFixture, img diffImage, s *st.Signed) error) func(*diffFixture, diffImage) error {
	return func(f *diffFixture, img diffImage) error {
		s, err := st.SignWithKey(key, hash, payload(img))
		if err != nil {
			return err
		}
		if edit != nil {
			if err := edit(f, img, s); err != nil {
				return err
			}
		}
		return pushSigned(img, s)
	}
}

// keyless issues a certificate (default: testSubject, testIssuer, SCT by
// the good CT log) from the good PKI, signs img's payload, has the good
// Rekor log it now, and pushes it, after edit.
func keyless(leaf func(f *diffFixture) (st.Leaf, *st.PKI), edit func(f *diffFixture, img diffImage, s *st.Signed) error) func(*diffFixture, diffImage) error {
	return func(f *diffFixture, img diffImage) error {
		l, issuer := st.Leaf{Email: testSubject, Issuer: testIssuer, SCTBy: f.good}, f.good
		if leaf != nil {
			l, issuer = leaf(f)
		}
		s, err := issuer.SignKeyless(l, payload(img))
		if err != nil {
			return err
		}
		if err := s.LogHashedRekord(f.good, time.Now()); err != nil {
			return err
		}
		if edit != nil {
			if err := edit(f, img, s); err != nil {
				return err
			}
		}
		return pushSigned(img, s)
	}
}

func leafWith(mod func(f *diffFixture, l *st.Leaf)) func(f *diffFixture) (st.Leaf, *st.PKI) {
	return func(f *diffFixture) (st.Leaf, *st.PKI) {
		l := st.Leaf{Email: testSubject, Issuer: testIssuer, SCTBy: f.good}
		mod(f, &l)
		return l, f.good
	}
}

// expired is a certificate valid two hours ago for ten minutes.
func expired(f *diffFixture, l *st.Leaf) {
	l.NotBefore = time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	l.NotAfter = l.NotBefore.Add(10 * time.Minute)
}

// inWindow is a moment inside an expired certificate's validity.
func inWindow() time.Time { return time.Now().Add(-2*time.Hour + 5*time.Minute) }

// relog replaces s's Rekor bundle by one the good log (or, with bad, the
// untrusted one) signed at t.
func relog(bad bool, t func() time.Time) func(f *diffFixture, img diffImage, s *st.Signed) error {
	return func(f *diffFixture, img diffImage, s *st.Signed) error {
		log := f.good
		if bad {
			log = f.bad
		}
		return s.LogHashedRekord(log, t())
	}
}

// entryOf replaces s's Rekor bundle by the good log's entry for another,
// genuine signature that other makes (the log's own library refuses to
// record a signature that does not verify, so the mismatch is in what the
// entry is about, not in its validity).
func entryOf(other func(f *diffFixture, s *st.Signed) (*st.Signed, error)) func(f *diffFixture, img diffImage, s *st.Signed) error {
	return func(f *diffFixture, img diffImage, s *st.Signed) error {
		o, err := other(f, s)
		if err != nil {
			return err
		}
		if err := o.LogHashedRekord(f.good, time.Now()); err != nil {
			return err
		}
		s.Entry = o.Entry
		return nil
	}
}

func mustKey[K crypto.Signer](k K, err error) K {
	if err != nil {
		panic(err)
	}
	return k
}

var (
	keyA    = mustKey(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	keyB    = mustKey(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	key384  = mustKey(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	keyRSA  = mustKey(rsa.GenerateKey(rand.Reader, 2048))
	_, edPK = mustEd()
)

func mustEd() (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return pub, priv
}

var (
	keyOffline = trust{key: keyA.Public(), ignoreTlog: true}
	keyTlog    = trust{key: keyA.Public()}
	identity   = trust{subject: testSubject, issuer: testIssuer}
)

func with(tr trust, mod func(*trust)) trust { mod(&tr); return tr }

// diffCases are the rows. Legacy .sig signatures here, bundles in
// bundleCases.
func diffCases() []diffCase {
	cases := []diffCase{
		// --- keys -----------------------------------------------------
		{name: "key/p256-valid", class: "keys", crafted: "ECDSA P-256 signature over the payload",
			craft: keySig(keyA, crypto.SHA256, nil), trust: keyOffline, cosignOK: true},
		{name: "key/wrong-key", class: "keys", crafted: "signed by another key than the attestor's",
			craft: keySig(keyB, crypto.SHA256, nil), trust: keyOffline},
		{name: "key/payload-for-other-digest", class: "keys", crafted: "valid signature over a payload naming another image digest",
			craft: keySig(keyA, crypto.SHA256, func(f *diffFixture, img diffImage, s *st.Signed) error {
				s.Payload = st.SimpleSigning(img.repo.Name(), "sha256:"+hexOf(sha256.Sum256([]byte("other"))), st.SimpleSigningType)
				var err error
				s.Sig, err = st.Sign(keyA, crypto.SHA256, s.Payload)
				return err
			}), trust: keyOffline},
		{name: "key/bad-base64", class: "keys", crafted: "signature annotation that is not base64",
			craft: func(f *diffFixture, img diffImage) error {
				return st.PushLegacy(img.repo, img.digest, st.LegacySig{Payload: payload(img), Signature: "!!not*base64$$"})
			}, trust: keyOffline},
		{name: "key/tampered-payload", class: "keys", crafted: "signature over the payload, layer holds the payload with an extra optional field",
			craft: keySig(keyA, crypto.SHA256, func(f *diffFixture, img diffImage, s *st.Signed) error {
				s.Payload = append(s.Payload[:len(s.Payload)-1], []byte(`,"x":1}`)...)
				return nil
			}), trust: keyOffline},
		{name: "key/p384-sha384", class: "keys", crafted: "ECDSA P-384 over SHA-384 (cosign --signature-digest-algorithm sha384)",
			craft: keySig(key384, crypto.SHA384, nil), trust: with(keyOffline, func(t *trust) { t.key, t.digestAlg = key384.Public(), "sha384" }), cosignOK: true},
		{name: "key/rsa-2048", class: "keys", crafted: "RSA PKCS #1 v1.5 over SHA-256",
			craft: keySig(keyRSA, crypto.SHA256, nil), trust: with(keyOffline, func(t *trust) { t.key = keyRSA.Public() }), cosignOK: true},
		{name: "key/ed25519", class: "keys", crafted: "Ed25519 over the payload",
			craft: keySig(edPK, crypto.Hash(0), nil), trust: with(keyOffline, func(t *trust) { t.key = edPK.Public() }), cosignOK: true},
		{name: "key/critical-type-other", class: "keys", crafted: "valid signature over a payload whose critical.type is not cosign's",
			craft: keySig(keyA, crypto.SHA256, func(f *diffFixture, img diffImage, s *st.Signed) error {
				s.Payload = st.SimpleSigning(img.repo.Name(), img.digest, "atomic container signature")
				var err error
				s.Sig, err = st.Sign(keyA, crypto.SHA256, s.Payload)
				return err
			}), trust: keyOffline, cosignOK: true, rel: stricter},
		{name: "key/one-good-layer-of-two", class: "keys", crafted: "a layer signed by another key, then a valid one",
			craft: func(f *diffFixture, img diffImage) error {
				bad, err := st.SignWithKey(keyB, crypto.SHA256, payload(img))
				if err != nil {
					return err
				}
				good, err := st.SignWithKey(keyA, crypto.SHA256, payload(img))
				if err != nil {
					return err
				}
				return pushSigned(img, bad, good)
			}, trust: keyOffline, cosignOK: true},
		{name: "key/tlog-valid-set", class: "rekor", crafted: "key signature with a Rekor bundle (hashedrekord, SET by the trusted log)",
			craft: keySig(keyA, crypto.SHA256, func(f *diffFixture, img diffImage, s *st.Signed) error {
				return s.LogHashedRekord(f.good, time.Now())
			}), trust: keyTlog, cosignOK: true},
		{name: "key/tlog-required-no-bundle", class: "rekor", crafted: "key signature without a Rekor bundle, log required (offline)",
			craft: keySig(keyA, crypto.SHA256, nil), trust: keyTlog},
	}
	cases = append(cases, keylessCases()...)
	cases = append(cases, logCases()...)
	cases = append(cases, bundleCases()...)
	return cases
}

func hexOf(b [32]byte) string { return st.Hex(b[:]) }
