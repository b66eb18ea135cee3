package e2e

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	st "github.com/imagegate/imagegate/test/e2e/sigstoretest"
)

// statement is the in-toto statement cosign sign --new-bundle-format makes for img.
func statement(img diffImage) []byte {
	return st.Statement(img.repo.Name(), img.hex, st.CosignSignPredicate)
}

// bundleOf signs statement(img) (or what stmt returns) into a bundle
// attached as a referrer; keyless (good PKI, SCT, dsse entry with SET and
// inclusion proof) unless key is set; edit may change the bundle.
func bundleOf(key crypto.Signer, stmt func(img diffImage) []byte, edit func(f *diffFixture, e *st.SignedEnvelope, b *st.Bundle) error) func(*diffFixture, diffImage) error {
	return func(f *diffFixture, img diffImage) error {
		if stmt == nil {
			stmt = statement
		}
		se := &st.SignedEnvelope{Key: key}
		if key == nil {
			cert, k, err := f.good.Issue(st.Leaf{Email: testSubject, Issuer: testIssuer, SCTBy: f.good})
			if err != nil {
				return err
			}
			se.Key, se.Cert = k, cert
		}
		var err error
		if se.Env, err = st.Envelope(st.InTotoPayloadType, stmt(img), se.Key); err != nil {
			return err
		}
		b := se.Bundle()
		if key == nil {
			entry, err := se.LogDSSE(f.good, time.Now())
			if err != nil {
				return err
			}
			b.Entries = []*st.Entry{entry}
		}
		if edit != nil {
			if err := edit(f, se, &b); err != nil {
				return err
			}
		}
		js, err := b.JSON()
		if err != nil {
			return err
		}
		return st.PushReferrer(img.repo, img.digest, st.BundleMediaType, st.BundleMediaType, js)
	}
}

var bundleKey = keyOffline // key-based bundles carry no log entry, as cosign sign --tlog-upload=false makes them

func bundleCases() []diffCase {
	return []diffCase{
		{name: "bundle/key-valid", class: "bundles", crafted: "DSSE bundle (cosign/sign/v1 statement) signed by the key, no log entry",
			craft: bundleOf(keyA, nil, nil), trust: bundleKey, cosignOK: true},
		{name: "bundle/key-wrong-key", class: "bundles", crafted: "DSSE bundle signed by another key",
			craft: bundleOf(keyB, nil, nil), trust: bundleKey},
		{name: "bundle/keyless-valid", class: "bundles", crafted: "keyless DSSE bundle: cert with SCT, dsse entry with SET and inclusion proof",
			craft: bundleOf(nil, nil, nil), trust: identity, cosignOK: true},
		{name: "bundle/keyless-wrong-subject", class: "bundles", crafted: "keyless bundle, identity not the attestor's",
			craft: bundleOf(nil, nil, nil), trust: with(identity, func(t *trust) { t.subject = "other@example.com" })},
		{name: "bundle/keyless-tampered-inclusion-proof", class: "bundles", crafted: "inclusion proof whose signed checkpoint names another root hash",
			craft: bundleOf(nil, nil, func(f *diffFixture, e *st.SignedEnvelope, b *st.Bundle) error {
				h := sha256.Sum256([]byte("another tree"))
				return f.good.Prove(b.Entries[0], h[:])
			}), trust: identity},
		{name: "bundle/keyless-set-unknown-log", class: "bundles", crafted: "dsse entry logged by a log not in the trusted root",
			craft: bundleOf(nil, nil, func(f *diffFixture, e *st.SignedEnvelope, b *st.Bundle) error {
				entry, err := e.LogDSSE(f.bad, time.Now())
				b.Entries = []*st.Entry{entry}
				return err
			}), trust: identity},
		{name: "bundle/keyless-expired-tsa-in-window", class: "bundles", crafted: "keyless bundle, expired cert, no log entry, trusted timestamp in its window",
			craft: func(f *diffFixture, img diffImage) error {
				l := st.Leaf{Email: testSubject, Issuer: testIssuer, SCTBy: f.good}
				expired(f, &l)
				cert, k, err := f.good.Issue(l)
				if err != nil {
					return err
				}
				env, err := st.Envelope(st.InTotoPayloadType, statement(img), k)
				if err != nil {
					return err
				}
				se := &st.SignedEnvelope{Env: env, Key: k, Cert: cert}
				b := se.Bundle()
				sig, err := decode(env.Signatures[0].Sig)
				if err != nil {
					return err
				}
				ts, err := f.good.Timestamp(sig, inWindow())
				b.Timestamps = [][]byte{ts}
				if err != nil {
					return err
				}
				js, err := b.JSON()
				if err != nil {
					return err
				}
				return st.PushReferrer(img.repo, img.digest, st.BundleMediaType, st.BundleMediaType, js)
			}, trust: tsaIdentity, cosignOK: true},
		{name: "bundle/wrong-media-type", class: "bundles", crafted: "valid key bundle in a referrer whose layer is application/json",
			craft: func(f *diffFixture, img diffImage) error {
				env, err := st.Envelope(st.InTotoPayloadType, statement(img), keyA)
				if err != nil {
					return err
				}
				js, err := (&st.SignedEnvelope{Env: env, Key: keyA}).Bundle().JSON()
				if err != nil {
					return err
				}
				return st.PushReferrer(img.repo, img.digest, "application/json", "application/json", js)
			}, trust: bundleKey},
		{name: "bundle/dsse-two-signatures", class: "bundles", crafted: "DSSE envelope signed by the key and by another key",
			craft: func(f *diffFixture, img diffImage) error {
				env, err := st.Envelope(st.InTotoPayloadType, statement(img), keyA, keyB)
				if err != nil {
					return err
				}
				js, err := (&st.SignedEnvelope{Env: env, Key: keyA}).Bundle().JSON()
				if err != nil {
					return err
				}
				return st.PushReferrer(img.repo, img.digest, st.BundleMediaType, st.BundleMediaType, js)
			}, trust: bundleKey},
		{name: "bundle/statement-duplicate-subject", class: "bundles", crafted: "statement with two \"subject\" keys: another digest first, the image's last",
			craft: bundleOf(keyA, func(img diffImage) []byte {
				return []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"%s"}}],"predicateType":%q,"predicate":{},"subject":[{"name":%q,"digest":{"sha256":%q}}]}`,
					hexOf(sha256.Sum256([]byte("other"))), st.CosignSignPredicate, img.repo.Name(), img.hex))
			}, nil), trust: bundleKey},
		{name: "bundle/statement-unknown-field", class: "bundles", crafted: "statement with an unknown top-level field",
			craft: bundleOf(keyA, func(img diffImage) []byte {
				return []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":%q,"digest":{"sha256":%q}}],"predicateType":%q,"predicate":{},"extra":true}`,
					img.repo.Name(), img.hex, st.CosignSignPredicate))
			}, nil), trust: bundleKey},
		{name: "bundle/statement-wrong-subject-digest", class: "bundles", crafted: "statement about another digest",
			craft: bundleOf(keyA, func(img diffImage) []byte {
				return st.Statement(img.repo.Name(), hexOf(sha256.Sum256([]byte("other"))), st.CosignSignPredicate)
			}, nil), trust: bundleKey},
		{name: "bundle/attestation-as-signature", class: "bundles", crafted: "bundle of a vuln attestation (predicate https://cosign.sigstore.dev/attestation/vuln/v1)",
			craft: bundleOf(keyA, func(img diffImage) []byte {
				return st.Statement(img.repo.Name(), img.hex, "https://cosign.sigstore.dev/attestation/vuln/v1")
			}, nil), trust: bundleKey, cosignOK: true, rel: stricter},
		{name: "bundle/message-signature", class: "bundles", crafted: "messageSignature bundle over the image digest, signed by the key",
			craft: func(f *diffFixture, img diffImage) error {
				d := shaOf(img)
				sig, err := st.SignDigest(keyA, d)
				if err != nil {
					return err
				}
				js, err := st.Bundle{MessageDigest: d, MessageSig: sig}.JSON()
				if err != nil {
					return err
				}
				return st.PushReferrer(img.repo, img.digest, st.BundleMediaType, st.BundleMediaType, js)
			}, trust: bundleKey},
		{name: "bundle/garbage-referrer-and-legacy", class: "bundles", crafted: "unparseable bundle referrer next to a valid legacy key signature",
			craft: func(f *diffFixture, img diffImage) error {
				if err := st.PushReferrer(img.repo, img.digest, st.BundleMediaType, st.BundleMediaType, []byte(`{"mediaType":`)); err != nil {
					return err
				}
				return keySig(keyA, crypto.SHA256, nil)(f, img)
			}, trust: bundleKey, cosignOK: true},
		{name: "bundle/unverifiable-bundle-and-legacy", class: "bundles", crafted: "well-formed bundle by another key next to a valid legacy key signature",
			craft: func(f *diffFixture, img diffImage) error {
				if err := bundleOf(keyB, nil, nil)(f, img); err != nil {
					return err
				}
				return keySig(keyA, crypto.SHA256, nil)(f, img)
			}, trust: bundleKey},
		{name: "bundle/junk-referrers-then-valid", class: "bundles", crafted: "eight SBOM-like referrers pushed before a valid key bundle",
			craft: func(f *diffFixture, img diffImage) error {
				for i := 0; i < 8; i++ {
					if err := st.PushReferrer(img.repo, img.digest, "application/spdx+json", "application/spdx+json", []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
						return err
					}
				}
				return bundleOf(keyA, nil, nil)(f, img)
			}, trust: bundleKey, cosignOK: true},
	}
}

func shaOf(img diffImage) []byte {
	b := make([]byte, 32)
	for i := range b {
		fmt.Sscanf(img.hex[2*i:2*i+2], "%02x", &b[i])
	}
	return b
}

func decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
