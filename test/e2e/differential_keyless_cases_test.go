package e2e

import (
	"crypto"
	"time"

	st "github.com/imagegate/imagegate/test/e2e/sigstoretest"
)

// noEntry drops the Rekor bundle.
func noEntry(f *diffFixture, img diffImage, s *st.Signed) error { s.Entry = nil; return nil }

// stamp adds an RFC 3161 timestamp over the signature by the good TSA (or
// the untrusted one) at t, over other bytes when other is set.
func stamp(bad, other bool, t func() time.Time) func(f *diffFixture, img diffImage, s *st.Signed) error {
	return func(f *diffFixture, img diffImage, s *st.Signed) error {
		tsa, data := f.good, s.Sig
		if bad {
			tsa = f.bad
		}
		if other {
			data = []byte("some other bytes")
		}
		var err error
		s.TSR, err = tsa.Timestamp(data, t())
		return err
	}
}

func then(edits ...func(f *diffFixture, img diffImage, s *st.Signed) error) func(f *diffFixture, img diffImage, s *st.Signed) error {
	return func(f *diffFixture, img diffImage, s *st.Signed) error {
		for _, e := range edits {
			if err := e(f, img, s); err != nil {
				return err
			}
		}
		return nil
	}
}

var (
	offlineIdentity = with(identity, func(t *trust) { t.ignoreTlog = true })
	tsaIdentity     = with(identity, func(t *trust) { t.ignoreTlog, t.signedTimestamps = true, true })
)

func keylessCases() []diffCase {
	return []diffCase{
		{name: "keyless/valid", class: "keyless", crafted: "Fulcio-like cert (e-mail SAN, issuer v1+v2, SCT) and Rekor bundle",
			craft: keyless(nil, nil), trust: identity, cosignOK: true},
		{name: "keyless/wrong-subject", class: "keyless", crafted: "valid certificate for another e-mail",
			craft: keyless(leafWith(func(f *diffFixture, l *st.Leaf) { l.Email = "intruder@example.com" }), nil), trust: identity},
		{name: "keyless/wrong-issuer", class: "keyless", crafted: "valid certificate from another OIDC issuer",
			craft: keyless(leafWith(func(f *diffFixture, l *st.Leaf) { l.Issuer = "https://accounts.example.org" }), nil), trust: identity},
		{name: "keyless/subject-regexp", class: "keyless", crafted: "certificate matched by --certificate-identity-regexp",
			craft: keyless(nil, nil), trust: with(identity, func(t *trust) { t.subjectRE = `^[a-z]+@example\.com$` }), cosignOK: true},
		{name: "keyless/issuer-regexp-no-match", class: "keyless", crafted: "issuer not matching --certificate-oidc-issuer-regexp",
			craft: keyless(nil, nil), trust: with(identity, func(t *trust) { t.issuerRE = `^https://accounts\.example\.org$` })},
		{name: "keyless/uri-san", class: "keyless", crafted: "identity in a URI SAN (workflow identity)",
			craft: keyless(leafWith(func(f *diffFixture, l *st.Leaf) {
				l.Email, l.URI = "", "https://ci.example.com/org/repo/.ci/build.yml@refs/heads/main"
			}), nil),
			trust: with(identity, func(t *trust) { t.subject = "https://ci.example.com/org/repo/.ci/build.yml@refs/heads/main" }), cosignOK: true},
		{name: "keyless/othername-san", class: "keyless", crafted: "identity in a critical otherName SAN (Fulcio username)",
			craft: keyless(leafWith(func(f *diffFixture, l *st.Leaf) { l.Email, l.OtherName = "", "builder!example.com" }), nil),
			trust: with(identity, func(t *trust) { t.subject = "builder!example.com" }), cosignOK: true},
		{name: "keyless/issuer-ext-v1-only", class: "keyless", crafted: "OIDC issuer only in the deprecated 1.3.6.1.4.1.57264.1.1 extension",
			craft: keyless(leafWith(func(f *diffFixture, l *st.Leaf) { l.IssuerExt = "v1" }), nil), trust: identity, cosignOK: true},
		// cosign v2.6.5 reads only the v1 extension for .sig signatures
		// ("got subjects [...] with issuer " and nothing after it).
		{name: "keyless/issuer-ext-v2-only", class: "keyless", crafted: "OIDC issuer only in the 1.3.6.1.4.1.57264.1.8 extension",
			craft: keyless(leafWith(func(f *diffFixture, l *st.Leaf) { l.IssuerExt = "v2" }), nil), trust: identity},
		{name: "keyless/untrusted-ca", class: "keyless", crafted: "certificate and chain from a CA not in the trusted root",
			craft: keyless(func(f *diffFixture) (st.Leaf, *st.PKI) {
				return st.Leaf{Email: testSubject, Issuer: testIssuer, SCTBy: f.good}, f.bad
			}, nil), trust: identity},
		{name: "keyless/intermediate-only-in-chain", class: "keyless", crafted: "trusted root lists the CA root without its intermediate; the chain annotation carries it",
			craft: keyless(nil, nil), trust: with(identity, func(t *trust) {
				t.root = func(f *diffFixture) st.Trust { tr := f.fullTrust(); tr.FulcioRootOnly = true; return tr }
			})},
		{name: "keyless/expired-no-timestamp-tlog-ignored", class: "keyless", crafted: "expired certificate, --insecure-ignore-tlog, no timestamp",
			craft: keyless(leafWith(expired), noEntry), trust: offlineIdentity},
		{name: "keyless/expired-forged-bundle", class: "keyless", crafted: "expired certificate, Rekor bundle claiming an in-window time, SET by an unknown key under the trusted log ID",
			craft: keyless(leafWith(expired), func(f *diffFixture, img diffImage, s *st.Signed) error {
				if err := s.LogHashedRekord(f.good, inWindow()); err != nil {
					return err
				}
				var err error
				s.Entry.SET, err = f.bad.SignSET(s.Entry)
				return err
			}), trust: identity},
		{name: "keyless/expired-bundle-in-window", class: "keyless", crafted: "expired certificate, valid SET with an in-window integrated time",
			craft: keyless(leafWith(expired), relog(false, inWindow)), trust: identity, cosignOK: true},
		{name: "keyless/expired-bundle-after-expiry", class: "keyless", crafted: "expired certificate, valid SET integrated after expiry",
			craft: keyless(leafWith(expired), nil), trust: identity},
		{name: "keyless/expired-tsa-in-window", class: "tsa", crafted: "expired certificate, trusted RFC 3161 timestamp inside its validity",
			craft: keyless(leafWith(expired), then(noEntry, stamp(false, false, inWindow))), trust: tsaIdentity, cosignOK: true},
		{name: "keyless/expired-tsa-after-expiry", class: "tsa", crafted: "expired certificate, trusted timestamp from now",
			craft: keyless(leafWith(expired), then(noEntry, stamp(false, false, time.Now))), trust: tsaIdentity},
		{name: "tsa/valid", class: "tsa", crafted: "valid certificate and trusted timestamp over the signature",
			craft: keyless(nil, then(noEntry, stamp(false, false, time.Now))), trust: tsaIdentity, cosignOK: true},
		{name: "tsa/over-other-bytes", class: "tsa", crafted: "timestamp over other bytes than the signature",
			craft: keyless(nil, then(noEntry, stamp(false, true, time.Now))), trust: tsaIdentity},
		{name: "tsa/unknown-tsa", class: "tsa", crafted: "timestamp by a TSA not in the trusted root",
			craft: keyless(nil, then(noEntry, stamp(true, false, time.Now))), trust: tsaIdentity},
		// --- CT -------------------------------------------------------
		{name: "ct/no-sct-required", class: "ct", crafted: "certificate without an SCT, ctlog required",
			craft: keyless(leafWith(func(f *diffFixture, l *st.Leaf) { l.SCTBy = nil }), nil), trust: identity},
		{name: "ct/no-sct-ignored", class: "ct", crafted: "certificate without an SCT, --insecure-ignore-sct / ctlog: ignore",
			craft: keyless(leafWith(func(f *diffFixture, l *st.Leaf) { l.SCTBy = nil }), nil),
			trust: with(identity, func(t *trust) { t.ignoreSCT = true }), cosignOK: true},
		{name: "ct/sct-unknown-log", class: "ct", crafted: "SCT signed by a CT log not in the trusted root",
			craft: keyless(leafWith(func(f *diffFixture, l *st.Leaf) { l.SCTBy = f.bad }), nil), trust: identity},
	}
}

// logCases are Rekor bundles that do not vouch for the signature.
func logCases() []diffCase {
	// ECDSA signatures are randomized: signing again gives another valid one.
	resign := func(f *diffFixture, s *st.Signed) (*st.Signed, error) {
		o, err := st.SignWithKey(s.Key, crypto.SHA256, s.Payload)
		if o != nil {
			o.Cert = s.Cert
		}
		return o, err
	}
	byKeyB := func(f *diffFixture, s *st.Signed) (*st.Signed, error) {
		return st.SignWithKey(keyB, crypto.SHA256, s.Payload)
	}
	otherPayload := func(f *diffFixture, s *st.Signed) (*st.Signed, error) {
		o, err := st.SignWithKey(s.Key, crypto.SHA256, append(append([]byte{}, s.Payload...), ' '))
		if o != nil {
			o.Cert = s.Cert
		}
		return o, err
	}
	return []diffCase{
		{name: "rekor/set-unknown-log", class: "rekor", crafted: "Rekor bundle from a log not in the trusted root",
			craft: keyless(nil, relog(true, time.Now)), trust: identity},
		{name: "rekor/entry-other-signature", class: "rekor", crafted: "SET-valid entry recording another signature",
			craft: keyless(nil, entryOf(resign)), trust: identity},
		{name: "rekor/entry-other-key", class: "rekor", crafted: "SET-valid entry recording another public key (key-based)",
			craft: keySig(keyA, crypto.SHA256, entryOf(byKeyB)), trust: keyTlog},
		{name: "rekor/entry-other-payload-hash", class: "rekor", crafted: "SET-valid entry recording another payload hash",
			craft: keyless(nil, entryOf(otherPayload)), trust: identity},
		{name: "rekor/log-id-mismatch", class: "rekor", crafted: "SET signed by the trusted log key but naming another log ID",
			craft: keyless(nil, func(f *diffFixture, img diffImage, s *st.Signed) error {
				s.Entry.LogID = st.LogID(f.bad.RekorKey.Public())
				var err error
				s.Entry.SET, err = f.good.SignSET(s.Entry)
				return err
			}), trust: identity},
		{name: "rekor/integrated-time-outside-key-window", class: "rekor", crafted: "trusted root ends the Rekor key's validity an hour ago; entry integrated now",
			craft: keyless(nil, nil), trust: with(identity, func(t *trust) {
				t.root = func(f *diffFixture) st.Trust {
					tr := f.fullTrust()
					tr.RekorWindow = &st.Window{Start: f.good.Epoch, End: time.Now().Add(-time.Hour)}
					return tr
				}
			})},
		{name: "rekor/keyless-tlog-required-no-bundle", class: "rekor", crafted: "keyless signature without a Rekor bundle, log required (offline)",
			craft: keyless(nil, noEntry), trust: identity},
	}
}
