package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// signingRegistry is a registry that makes up, for any digest asked about,
// cosign's signature image (the sha256-<hex>.sig tag) signed with key:
// a soak can name as many distinct images as it likes without pushing any.
// Digests whose first hex digit is 'f' are unsigned (no .sig tag), so the
// deny path is driven too. It has no referrers (like docker-registry 2.8).
type signingRegistry struct {
	key *ecdsa.PrivateKey

	mu    sync.Mutex
	blobs map[string][]byte // payloads made for a manifest, until fetched
}

const emptyConfig = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

func (sr *signingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/v2/" || path == "/v2":
		w.WriteHeader(http.StatusOK)
	case strings.Contains(path, "/blobs/"):
		d := path[strings.LastIndex(path, "/")+1:]
		if d == emptyConfig {
			_, _ = w.Write([]byte("{}"))
			return
		}
		sr.mu.Lock()
		b, ok := sr.blobs[d]
		delete(sr.blobs, d) // fetched once per digest: the verifier caches it
		sr.mu.Unlock()
		if !ok {
			http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		_, _ = w.Write(b)
	case strings.Contains(path, "/manifests/sha256-") && strings.HasSuffix(path, ".sig"):
		repo := strings.TrimPrefix(path[:strings.Index(path, "/manifests/")], "/v2/")
		hexPart := strings.TrimSuffix(path[strings.LastIndex(path, "sha256-")+len("sha256-"):], ".sig")
		if strings.HasPrefix(hexPart, "f") {
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		sr.signature(w, r.Host+"/"+repo, "sha256:"+hexPart)
	default:
		http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
	}
}

// signature answers the .sig manifest of digest: one layer, cosign's simple
// signing payload, with the signature annotation.
func (sr *signingRegistry) signature(w http.ResponseWriter, repo, digest string) {
	payload := fmt.Appendf(nil, `{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, repo, digest)
	h := sha256.Sum256(payload)
	sig, err := sr.key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	blob := "sha256:" + hex.EncodeToString(h[:])
	sr.mu.Lock()
	if len(sr.blobs) > 100000 { // payloads never fetched (requests that timed out)
		clear(sr.blobs)
	}
	sr.blobs[blob] = payload
	sr.mu.Unlock()
	w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	fmt.Fprintf(w, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":%q},`+
		`"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":%d,"digest":%q,`+
		`"annotations":{"dev.cosignproject.cosign/signature":%q}}]}`,
		emptyConfig, len(payload), blob, base64.StdEncoding.EncodeToString(sig))
}
