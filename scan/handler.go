package scan

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Routes the Handler serves.
const (
	RouteImport         = "POST /api/v1/scans"
	RouteClearMalicious = "DELETE /api/v1/scans/malicious/{digest}"
	clearPrefix         = "/api/v1/scans/malicious/"
)

// Actions of the calls, as audit events name them.
const (
	ActionImport         = "imagegate:ImportScan"
	ActionClearMalicious = "imagegate:ClearMaliciousMark"
)

// TokenPrincipal is the principal of calls made with the scan token.
const TokenPrincipal = "scan-token"

// MaxClockSkew is how far in the future a report's own time may be: a scan
// dated later would pin the image's scan against every real one to come.
const MaxClockSkew = 5 * time.Minute

// Call is one call of the scan endpoints as the handler saw it, for the
// audit trail: who, what, on which image, and what came of it.
type Call struct {
	Time      time.Time
	RequestID string
	Principal string
	Action    string
	Resource  string // imagegate:scan/<digest or repository:tag>
	Allowed   bool   // the token was valid
	Decision  string // what was done, or why not
	SourceIP  string
	Status    int
	Code      string // empty on success
}

// Handler serves RouteImport, a bearer-authenticated upload of one report
// (a Trivy JSON report by default; ?format= names another), imported whole
// or not at all into Store, and RouteClearMalicious, the only
// way a malicious mark goes away. A report not newer than the scan stored
// for its image is refused with 409 and the stored scan's time.
type Handler struct {
	Store Store
	// Tokens checks the bearer token (a token file re-read when it
	// changes); without it, Token is the token, of TokenPrincipal.
	Tokens   TokenChecker
	Token    string
	MaxBytes int64
	Now      func() time.Time
	OnImport func()     // called after a successful write (e.g. refresh a reader)
	Audit    func(Call) // when set, receives every call, refused ones too
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &Call{Time: h.Now(), RequestID: requestID(), Action: ActionImport, SourceIP: remoteIP(r)}
	w.Header().Set("X-Request-Id", c.RequestID)
	status, body := h.serve(w, r, c)
	c.Status = status
	if status >= 400 {
		c.Decision = body["error"].(string)
	}
	if h.Audit != nil {
		h.Audit(*c)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, c *Call) (int, map[string]any) {
	digest, clearing := strings.CutPrefix(r.URL.Path, clearPrefix)
	switch {
	case clearing && r.Method == http.MethodDelete:
		c.Action = ActionClearMalicious
	case !clearing && r.Method == http.MethodPost:
	default:
		w.Header().Set("Allow", map[bool]string{true: http.MethodDelete, false: http.MethodPost}[clearing])
		c.Code = "MethodNotAllowed"
		return http.StatusMethodNotAllowed, errBody("use POST to import a report, DELETE " + clearPrefix + "DIGEST to clear a malicious mark")
	}
	principal, ok := h.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="imagegate"`)
		c.Code = "InvalidToken"
		return http.StatusUnauthorized, errBody("missing or wrong bearer token")
	}
	c.Principal, c.Allowed = principal, true
	if clearing {
		return h.clear(r, c, digest)
	}
	return h.importReport(w, r, c)
}

// TokenChecker checks a bearer token: whose it is, and whether it is
// valid now.
type TokenChecker interface {
	Check(token string) (principal string, ok bool)
}

func (h *Handler) authenticate(r *http.Request) (string, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false
	}
	if h.Tokens != nil {
		return h.Tokens.Check(token)
	}
	if h.Token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(h.Token)) != 1 {
		return "", false
	}
	return TokenPrincipal, true
}

func (h *Handler) importReport(w http.ResponseWriter, r *http.Request, c *Call) (int, map[string]any) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.MaxBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.Code = "PayloadTooLarge"
			return http.StatusRequestEntityTooLarge, errBody(fmt.Sprintf("report over %d bytes", h.MaxBytes))
		}
		c.Code = "InvalidParameter.Report"
		return http.StatusBadRequest, errBody("reading the report: " + err.Error())
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = FormatTrivy
	}
	recs, mal, err := Parse(format, body, c.Time)
	if err != nil {
		c.Code = "InvalidParameter.Report"
		return http.StatusBadRequest, errBody(err.Error())
	}
	images := []string{}
	for _, rec := range recs {
		images = append(images, firstNonEmpty(rec.Digest, rec.Ref))
	}
	for d := range mal {
		images = append(images, d)
	}
	c.Resource = scanResource(images)
	for _, rec := range recs {
		if at := rec.Scan.ScannedAt; at.After(c.Time.Add(MaxClockSkew)) {
			c.Code = "InvalidParameter.ScanTime"
			return http.StatusBadRequest, errBody(fmt.Sprintf("the report's scan time %s is in the future (now %s)",
				at.Format(time.RFC3339), c.Time.UTC().Format(time.RFC3339)))
		}
	}
	if err := h.Store.Import(r.Context(), recs, mal, RefuseStale()); err != nil {
		var stale *StaleError
		if errors.As(err, &stale) {
			c.Code = "Conflict.StaleScan"
			out := errBody(stale.Error())
			out["storedScanTime"] = stale.Stored.Format(time.RFC3339Nano)
			return http.StatusConflict, out
		}
		c.Code = "ServerError"
		return http.StatusInternalServerError, errBody(err.Error())
	}
	if h.OnImport != nil {
		h.OnImport()
	}
	c.Decision = fmt.Sprintf("imported %d scan(s), %d malicious digest(s)", len(recs), len(mal))
	return http.StatusOK, map[string]any{"imported": len(recs), "malicious": len(mal), "images": images[:len(recs)]}
}

func (h *Handler) clear(r *http.Request, c *Call, digest string) (int, map[string]any) {
	c.Resource = scanResource([]string{digest})
	if !digestRE.MatchString(digest) {
		c.Code = "InvalidParameter.Digest"
		return http.StatusBadRequest, errBody(fmt.Sprintf("digest %q: expected sha256: and 64 hex digits", digest))
	}
	found, err := h.Store.ClearMalicious(r.Context(), digest)
	if err != nil {
		c.Code = "ServerError"
		return http.StatusInternalServerError, errBody(err.Error())
	}
	if !found {
		c.Code = "NotFound"
		return http.StatusNotFound, errBody(digest + " is not marked malicious")
	}
	if h.OnImport != nil {
		h.OnImport()
	}
	c.Decision = "malicious mark cleared"
	if reason := r.URL.Query().Get("reason"); reason != "" {
		c.Decision += ": " + truncate(reason, 256)
	}
	return http.StatusOK, map[string]any{"cleared": digest}
}

// scanResource names the images of a call, at most a few of them.
func scanResource(images []string) string {
	if len(images) == 0 {
		return ""
	}
	res := "imagegate:scan/" + truncate(images[0], 300)
	if len(images) > 1 {
		res += fmt.Sprintf(" (and %d more)", len(images)-1)
	}
	return res
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func errBody(msg string) map[string]any { return map[string]any{"error": msg} }

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// remoteIP is the peer's address; forwarding headers are not trusted.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}
