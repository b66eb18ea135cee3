package api

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/imagegate/imagegate/iam"
)

// Signed requests: the three schemes the clouds' SDKs sign with, each
// verified with its own documented canonicalisation. HMAC is crypto/hmac
// over crypto/sha1 or crypto/sha256, composed exactly as the schemes
// specify; nothing else here is cryptography.
//
//   - Alibaba Cloud RPC, SignatureVersion 1.0 (alibaba-cloud-sdk-go): the
//     parameters (query and form) sorted and percent-encoded, signed as
//     METHOD&%2F&<encoded>, HMAC-SHA1 keyed with secret+"&", base64.
//   - Alibaba Cloud V3, ACS3-HMAC-SHA256 (Tea SDKs, darabonba-openapi): a
//     canonical request over method, path, query, the signed headers and
//     the body's SHA-256, HMAC-SHA256, hex.
//   - Huawei Cloud SDK-HMAC-SHA256 (huaweicloud-sdk-go-v3): a canonical
//     request over method, path (ending in /), query, the signed headers
//     and the body's SHA-256, signed with X-Sdk-Date, HMAC-SHA256, hex.
//
// Each request's time must be within SignatureWindow of the server's, and
// its nonce (x-acs-signature-nonce, SignatureNonce; for Huawei, which has
// none, the signature itself, on writes) is refused a second time within it.

const (
	schemeRPC    = "rpc"
	schemeACS3   = "ACS3-HMAC-SHA256"
	schemeHuawei = "SDK-HMAC-SHA256"
)

// signedRequest is a request's claim: which key, when, which nonce, and
// how to check its signature given the key's secret.
type signedRequest struct {
	scheme string
	keyID  string
	at     time.Time
	nonce  string
	verify func(secret []byte) bool
}

// sigError is a refused signed request, with the code Alibaba Cloud
// answers; REST endpoints answer Huawei Cloud's APIGW.0301 instead.
type sigError struct {
	status int
	code   string
	msg    string
}

func (e *sigError) Error() string { return e.code + ": " + e.msg }

func errIncomplete(format string, args ...any) *sigError {
	return &sigError{http.StatusBadRequest, "IncompleteSignature", "The request signature does not conform to the signing specification: " + fmt.Sprintf(format, args...)}
}

var (
	errKeyNotFound = &sigError{http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found."}
	errKeyInactive = &sigError{http.StatusBadRequest, "InvalidAccessKeyId.Inactive", "Specified access key is disabled."}
	errSigMismatch = &sigError{http.StatusBadRequest, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."}
	errNonceUsed   = &sigError{http.StatusBadRequest, "SignatureNonceUsed", "Specified signature nonce was used already."}
	errExpiredTime = &sigError{http.StatusBadRequest, "InvalidTimeStamp.Expired", fmt.Sprintf("Specified time stamp or date value is expired (more than %s from the server's time).", SignatureWindow)}
)

// parseSigned recognises a signed request; ok is false for requests that
// carry no signature (bearer tokens), err a signature that is malformed.
func parseSigned(r *http.Request, body []byte) (sr *signedRequest, ok bool, err error) {
	authz := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(authz, schemeACS3+" "):
		sr, err = parseACS3(r, body, authz[len(schemeACS3)+1:])
		return sr, true, err
	case strings.HasPrefix(authz, schemeHuawei+" "):
		sr, err = parseHuawei(r, body, authz[len(schemeHuawei)+1:])
		return sr, true, err
	case strings.HasPrefix(authz, "ACS3-") || strings.HasPrefix(authz, "SDK-"):
		return nil, true, errIncomplete("unsupported signature algorithm %q", strings.Fields(authz)[0])
	}
	if authz != "" || r.Header.Get("X-Auth-Token") != "" {
		return nil, false, nil
	}
	params, err := rpcParams(r, body)
	if err != nil {
		return nil, true, err
	}
	if _, signed := params["Signature"]; !signed {
		return nil, false, nil
	}
	sr, err = parseRPC(r.Method, params)
	return sr, true, err
}

// rpcParams are the query and form parameters together, each once.
func rpcParams(r *http.Request, body []byte) (map[string]string, error) {
	out := map[string]string{}
	add := func(vs url.Values) error {
		for k, v := range vs {
			if len(v) != 1 {
				return errIncomplete("parameter %s given %d times", k, len(v))
			}
			out[k] = v[0]
		}
		return nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errIncomplete("the query does not parse: %v", err)
	}
	if err := add(q); err != nil {
		return nil, err
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" && len(body) > 0 {
		f, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errIncomplete("the form does not parse: %v", err)
		}
		if err := add(f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// percentEncode is the RPC and V3 signatures' encoding: RFC 3986
// unreserved characters kept, everything else %XX, space as %20.
func percentEncode(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	return strings.ReplaceAll(e, "%7E", "~")
}

func parseRPC(method string, params map[string]string) (*signedRequest, error) {
	for _, p := range []string{"AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"} {
		if params[p] == "" {
			return nil, errIncomplete("%s is required with Signature", p)
		}
	}
	if params["SignatureMethod"] != "HMAC-SHA1" || params["SignatureVersion"] != "1.0" {
		return nil, errIncomplete("SignatureMethod %q SignatureVersion %q: expected HMAC-SHA1 and 1.0", params["SignatureMethod"], params["SignatureVersion"])
	}
	at, err := time.Parse(time.RFC3339, params["Timestamp"])
	if err != nil {
		return nil, &sigError{http.StatusBadRequest, "InvalidTimeStamp.Format", fmt.Sprintf("Timestamp %q: expected 2006-01-02T15:04:05Z", params["Timestamp"])}
	}
	given := params["Signature"]
	return &signedRequest{scheme: schemeRPC, keyID: params["AccessKeyId"], at: at, nonce: params["SignatureNonce"],
		verify: func(secret []byte) bool {
			keys := make([]string, 0, len(params))
			for k := range params {
				if k != "Signature" {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			var canon strings.Builder
			for i, k := range keys {
				if i > 0 {
					canon.WriteByte('&')
				}
				canon.WriteString(percentEncode(k))
				canon.WriteByte('=')
				canon.WriteString(percentEncode(params[k]))
			}
			toSign := method + "&%2F&" + percentEncode(canon.String())
			key := make([]byte, 0, len(secret)+1)
			key = append(append(key, secret...), '&')
			m := hmac.New(sha1.New, key)
			m.Write([]byte(toSign))
			want := base64.StdEncoding.EncodeToString(m.Sum(nil))
			return hmac.Equal([]byte(want), []byte(given))
		}}, nil
}

// authFields splits "K1=v1,K2=v2" (spaces allowed after commas).
func authFields(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			out[k] = v
		}
	}
	return out
}

// headerValues is a signed header's values as the request carries them:
// host is the request's Host, which Go keeps out of the header map.
// acsPathEscaper turns Go's path escaping into the ACS3 canonical form; built
// once (a Replacer builds its tables on first use).
var acsPathEscaper = strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~")

func headerValues(r *http.Request, name string) []string {
	if name == "host" {
		return []string{r.Host}
	}
	vs := r.Header.Values(name)
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.TrimSpace(v)
	}
	slices.Sort(out)
	return out
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256Hex(secret []byte, s string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

func parseACS3(r *http.Request, body []byte, rest string) (*signedRequest, error) {
	f := authFields(rest)
	keyID, signedList, given := f["Credential"], f["SignedHeaders"], f["Signature"]
	if keyID == "" || signedList == "" || given == "" {
		return nil, errIncomplete("Authorization: expected Credential=…,SignedHeaders=…,Signature=…")
	}
	signed := strings.Split(signedList, ";")
	// Everything that changes what the call does must be signed: the
	// operation (x-acs-action), the body (x-acs-content-sha256), the
	// host, the time and the nonce.
	for _, h := range []string{"host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"} {
		if !slices.Contains(signed, h) {
			return nil, errIncomplete("SignedHeaders must include %s", h)
		}
	}
	for name := range r.Header {
		if l := strings.ToLower(name); strings.HasPrefix(l, "x-acs-") && !slices.Contains(signed, l) {
			return nil, errIncomplete("header %s is not signed", l)
		}
	}
	at, err := time.Parse(time.RFC3339, r.Header.Get("x-acs-date"))
	if err != nil {
		return nil, &sigError{http.StatusBadRequest, "InvalidTimeStamp.Format", fmt.Sprintf("x-acs-date %q: expected 2006-01-02T15:04:05Z", r.Header.Get("x-acs-date"))}
	}
	nonce := r.Header.Get("x-acs-signature-nonce")
	if nonce == "" {
		return nil, errIncomplete("x-acs-signature-nonce is empty")
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errIncomplete("the query does not parse: %v", err)
	}
	payload := r.Header.Get("x-acs-content-sha256")
	return &signedRequest{scheme: schemeACS3, keyID: keyID, at: at, nonce: nonce, verify: func(secret []byte) bool {
		if !hmac.Equal([]byte(payload), []byte(sha256Hex(body))) {
			return false
		}
		var cr strings.Builder
		cr.WriteString(r.Method + "\n")
		cr.WriteString(acsPathEscaper.Replace(r.URL.EscapedPath()) + "\n")
		keys := make([]string, 0, len(query))
		for k := range query {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				cr.WriteByte('&')
			}
			cr.WriteString(k + "=" + percentEncode(query.Get(k)))
		}
		cr.WriteByte('\n')
		for _, h := range signed {
			cr.WriteString(h + ":" + strings.Join(headerValues(r, h), ",") + "\n")
		}
		cr.WriteString("\n" + signedList + "\n" + payload)
		want := hmacSHA256Hex(secret, schemeACS3+"\n"+sha256Hex([]byte(cr.String())))
		return hmac.Equal([]byte(want), []byte(given))
	}}, nil
}

// huaweiEscape is Huawei Cloud's signing escape: letters, digits, _-~.
// kept, every other byte %XX.
func huaweiEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '~' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

const huaweiDateFormat = "20060102T150405Z"

func parseHuawei(r *http.Request, body []byte, rest string) (*signedRequest, error) {
	f := authFields(rest)
	keyID, signedList, given := f["Access"], f["SignedHeaders"], f["Signature"]
	if keyID == "" || signedList == "" || given == "" {
		return nil, errIncomplete("Authorization: expected Access=…, SignedHeaders=…, Signature=…")
	}
	signed := strings.Split(signedList, ";")
	if !slices.Contains(signed, "x-sdk-date") {
		return nil, errIncomplete("SignedHeaders must include x-sdk-date")
	}
	date := r.Header.Get("X-Sdk-Date")
	if date == "" {
		return nil, errIncomplete("X-Sdk-Date is required")
	}
	at, err := time.Parse(huaweiDateFormat, date)
	if err != nil {
		return nil, &sigError{http.StatusBadRequest, "InvalidTimeStamp.Format", fmt.Sprintf("X-Sdk-Date %q: expected 20060102T150405Z", date)}
	}
	if v := r.Header.Get("X-Sdk-Content-Sha256"); v != "" && v != sha256Hex(body) {
		// UNSIGNED-PAYLOAD included: every body here is signed.
		return nil, errIncomplete("X-Sdk-Content-Sha256 must be the body's SHA-256")
	}
	// The scheme has no nonce: the signature stands in for one on writes.
	// Reads are not remembered, because two identical reads within the
	// same second (X-Sdk-Date's resolution) sign alike and both must be
	// answered; replaying a read changes nothing.
	nonce := given
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		nonce = ""
	}
	return &signedRequest{scheme: schemeHuawei, keyID: keyID, at: at, nonce: nonce, verify: func(secret []byte) bool {
		var cr strings.Builder
		cr.WriteString(r.Method + "\n")
		segs := strings.Split(r.URL.Path, "/")
		for i, s := range segs {
			segs[i] = huaweiEscape(s)
		}
		path := strings.Join(segs, "/")
		if !strings.HasSuffix(path, "/") {
			path += "/"
		}
		cr.WriteString(path + "\n")
		query := r.URL.Query()
		keys := make([]string, 0, len(query))
		for k := range query {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		first := true
		for _, k := range keys {
			vs := slices.Clone(query[k])
			slices.Sort(vs)
			for _, v := range vs {
				if !first {
					cr.WriteByte('&')
				}
				first = false
				cr.WriteString(huaweiEscape(k) + "=" + huaweiEscape(v))
			}
		}
		cr.WriteByte('\n')
		for _, h := range signed {
			for _, v := range headerValues(r, h) {
				cr.WriteString(h + ":" + v + "\n")
			}
		}
		cr.WriteString("\n" + signedList + "\n" + sha256Hex(body))
		want := hmacSHA256Hex(secret, schemeHuawei+"\n"+date+"\n"+sha256Hex([]byte(cr.String())))
		return hmac.Equal([]byte(want), []byte(given))
	}}, nil
}

// authenticateSigned checks a signed request against its access key: the
// key exists and is active, the time is within the window, the signature
// matches, and only then (so unsigned traffic cannot fill the memory) the
// nonce is new.
func (h *Handler) authenticateSigned(sr *signedRequest, now time.Time) (iam.Principal, error) {
	k, ok := h.state.load().keys[sr.keyID]
	if !ok {
		return iam.Principal{}, errKeyNotFound
	}
	if !k.active {
		return iam.Principal{}, errKeyInactive
	}
	if d := now.Sub(sr.at); d > SignatureWindow || d < -SignatureWindow {
		return iam.Principal{}, errExpiredTime
	}
	if !sr.verify(k.secret) {
		return iam.Principal{}, errSigMismatch
	}
	if sr.nonce == "" {
		return k.principal, nil
	}
	switch h.replays.check(sr.scheme+"\x00"+sr.keyID+"\x00"+sr.nonce, sr.at, now) {
	case replayUsed:
		return iam.Principal{}, errNonceUsed
	case replayBelowFloor:
		return iam.Principal{}, errExpiredTime
	}
	return k.principal, nil
}
