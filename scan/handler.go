package scan

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Handler is POST /api/v1/scans: a bearer-authenticated upload of one report
// (a Trivy JSON report by default; ?format= names another), imported whole
// or not at all into the store at Path.
type Handler struct {
	Path     string
	Token    string // required bearer token
	MaxBytes int64
	Now      func() time.Time
	OnImport func() // called after a successful import (e.g. refresh a reader)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		jsonError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || h.Token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(h.Token)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="imagegate"`)
		jsonError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.MaxBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			jsonError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("report over %d bytes", h.MaxBytes))
			return
		}
		jsonError(w, http.StatusBadRequest, "reading the report: "+err.Error())
		return
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = FormatTrivy
	}
	recs, mal, err := Parse(format, body, h.Now())
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := Import(h.Path, recs, mal); err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if h.OnImport != nil {
		h.OnImport()
	}
	out := struct {
		Imported  int      `json:"imported"`
		Malicious int      `json:"malicious"`
		Images    []string `json:"images"`
	}{Imported: len(recs), Malicious: len(mal), Images: []string{}}
	for _, rec := range recs {
		out.Images = append(out.Images, firstNonEmpty(rec.Digest, rec.Ref))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
