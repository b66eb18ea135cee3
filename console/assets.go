package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// files are the built assets (make console-assets builds them from web/).
//
//go:embed assets
var files embed.FS

// asset is one file, with its gzip form made once at start.
type asset struct {
	body, gz    []byte
	etag, ctype string
}

type assets struct{ m map[string]*asset }

func loadAssets() (*assets, error) {
	a := &assets{m: map[string]*asset{}}
	err := fs.WalkDir(files, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		_, _ = zw.Write(b)
		_ = zw.Close()
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		a.m[strings.TrimPrefix(p, "assets/")] = &asset{body: b, gz: gz.Bytes(), etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console assets: %w", err)
	}
	if a.m["index.html"] == nil {
		return nil, fmt.Errorf("console assets: no index.html (make console-assets)")
	}
	return a, nil
}

// GzipSize is the total size of the assets gzipped, as they are served.
func GzipSize() (int, error) {
	a, err := loadAssets()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range a.m {
		n += len(f.gz)
	}
	return n, nil
}

func (a *assets) serveIndex(w http.ResponseWriter, r *http.Request) { a.write(w, r, a.m["index.html"]) }

func (a *assets) serve(w http.ResponseWriter, r *http.Request) {
	f := a.m[r.PathValue("name")]
	if f == nil || r.PathValue("name") == "index.html" {
		http.NotFound(w, r)
		return
	}
	a.write(w, r, f)
}

func (a *assets) write(w http.ResponseWriter, r *http.Request, f *asset) {
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := f.body
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = f.gz
	}
	_, _ = w.Write(body)
}
