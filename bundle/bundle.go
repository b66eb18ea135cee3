package bundle

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imagegate/imagegate/policy"
)

// Media types of a policy bundle. The artifact type is written both as the
// manifest's artifactType and as its config's media type, so registries
// and clients predating OCI 1.1 still see what the artifact is.
const (
	ArtifactType    = "application/vnd.imagegate.policy.v1"
	ConfigMediaType = "application/vnd.imagegate.policy.config.v1+json"
	LayerMediaType  = "application/vnd.imagegate.policy.v1+yaml"
	// TitleAnnotation names a layer's file, as ORAS does.
	TitleAnnotation = "org.opencontainers.image.title"
	// Scheme prefixes a bundle reference where a directory could be given.
	Scheme = "oci://"
)

// Bounds of a bundle, applied when packing and again when reading one.
const (
	DefaultMaxBytes  = 4 << 20 // the layers together
	DefaultMaxLayers = 256
	DefaultTimeout   = time.Minute // one check of a Watcher
	maxManifestBytes = 256 << 10
	maxConfigBytes   = 64 << 10
)

// IsRef reports whether s names a bundle (oci://REF) rather than a path.
func IsRef(s string) bool { return strings.HasPrefix(s, Scheme) }

// Bundle is a policy set as an OCI artifact.
type Bundle struct {
	Manifest []byte  // the manifest as pushed; its sha256 is the digest
	Digest   v1.Hash // of Manifest
	Config   []byte
	Files    []policy.File // one per layer, named by its title
	Snapshot *policy.Snapshot
}

// config is the artifact's config blob: a summary for people looking at the
// registry. Readers recompute everything from the layers.
type config struct {
	SnapshotDigest string `json:"snapshotDigest"`
	Files          int    `json:"files"`
	Attestors      int    `json:"attestors"`
	Policies       int    `json:"binarySecurityPolicies"`
	Strategies     int    `json:"opaStrategies"`
}

// manifest is the OCI image manifest of a bundle.
type manifest struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     types.MediaType `json:"mediaType"`
	ArtifactType  string          `json:"artifactType,omitempty"`
	Config        v1.Descriptor   `json:"config"`
	Layers        []v1.Descriptor `json:"layers"`
}

func newConfig(snap *policy.Snapshot, files int) []byte {
	b, _ := json.Marshal(config{SnapshotDigest: snap.Digest(), Files: files, Attestors: len(snap.Attestors()),
		Policies: len(snap.Policies()), Strategies: len(snap.Strategies())})
	return b
}

// LimitError says a bundle is larger than a reader accepts.
type LimitError struct {
	What  string // "layers" or "bytes"
	Got   int64
	Limit int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("policy bundle has %d %s, more than the %d allowed", e.Got, e.What, e.Limit)
}
