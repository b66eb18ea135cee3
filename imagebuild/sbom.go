package imagebuild

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// SBOMPath is where each platform image carries its SBOM. The SBOM is a file
// in its own layer rather than a separate artifact: it travels with the
// image through any registry and copy tool (no referrers API needed), and
// scanners that read SPDX files in an image's filesystem find it. The
// image config's label dev.imagegate.sbom names the path.
const SBOMPath = "usr/share/sbom/imagegate.spdx.json"

// spdx is the part of an SPDX 2.3 JSON document written here.
type spdx struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      creationInfo   `json:"creationInfo"`
	Packages          []spdxPackage  `json:"packages"`
	Relationships     []relationship `json:"relationships"`
}

type creationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string        `json:"name"`
	SPDXID           string        `json:"SPDXID"`
	VersionInfo      string        `json:"versionInfo,omitempty"`
	DownloadLocation string        `json:"downloadLocation"`
	FilesAnalyzed    bool          `json:"filesAnalyzed"`
	Checksums        []checksum    `json:"checksums,omitempty"`
	ExternalRefs     []externalRef `json:"externalRefs,omitempty"`
	Comment          string        `json:"comment,omitempty"`
}

type checksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type externalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type relationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// SBOM describes a Go binary: the main module (with the binary's SHA-256,
// the Go version and the VCS revision), every module it was linked with
// (go version -m lists the same), and the standard library.
func SBOM(binary []byte, path string, p Platform, t time.Time) ([]byte, error) {
	bi, err := buildinfo.Read(bytes.NewReader(binary))
	if err != nil {
		return nil, fmt.Errorf("sbom: build info of %s: %w", path, err)
	}
	sum := sha256.Sum256(binary)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	mainVersion := bi.Main.Version
	if rev := settings["vcs.revision"]; rev != "" && (mainVersion == "" || mainVersion == "(devel)") {
		mainVersion = rev
	}
	main := spdxPackage{
		Name: bi.Main.Path, SPDXID: "SPDXRef-Package-main", VersionInfo: mainVersion,
		DownloadLocation: "NOASSERTION", Checksums: []checksum{{"SHA256", hex.EncodeToString(sum[:])}},
		ExternalRefs: []externalRef{purl(bi.Main.Path, mainVersion, p)},
		Comment:      fmt.Sprintf("%s binary %s for %s, built with %s (vcs.modified=%s)", bi.Path, path, p, bi.GoVersion, settings["vcs.modified"]),
	}
	doc := spdx{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name: "imagegate " + p.String(),
		// The namespace must be unique per document; the binary's digest is,
		// and keeps the document reproducible.
		DocumentNamespace: "https://imagegate.dev/spdx/" + p.OS + "-" + p.Arch + "-" + hex.EncodeToString(sum[:]),
		CreationInfo:      creationInfo{Created: t.UTC().Format(time.RFC3339), Creators: []string{"Tool: imagegate-imagebuild"}},
		Packages:          []spdxPackage{main},
		Relationships:     []relationship{{"SPDXRef-DOCUMENT", "DESCRIBES", main.SPDXID}},
	}
	std := spdxPackage{Name: "stdlib", SPDXID: "SPDXRef-Package-stdlib", VersionInfo: bi.GoVersion, DownloadLocation: "https://go.dev/dl/",
		ExternalRefs: []externalRef{purl("stdlib", bi.GoVersion, p)}}
	doc.Packages = append(doc.Packages, std)
	doc.Relationships = append(doc.Relationships, relationship{main.SPDXID, "DEPENDS_ON", std.SPDXID})
	for i, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		pkg := spdxPackage{
			Name: d.Path, SPDXID: fmt.Sprintf("SPDXRef-Package-%d", i+1), VersionInfo: d.Version,
			DownloadLocation: "https://proxy.golang.org/" + strings.ToLower(d.Path) + "/@v/" + d.Version + ".zip",
			ExternalRefs:     []externalRef{purl(d.Path, d.Version, p)},
		}
		if d.Sum != "" {
			pkg.Comment = "go.sum hash " + d.Sum
		}
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships, relationship{main.SPDXID, "DEPENDS_ON", pkg.SPDXID})
	}
	return json.MarshalIndent(doc, "", "  ")
}

func purl(path, version string, p Platform) externalRef {
	loc := "pkg:golang/" + path
	if version != "" {
		loc += "@" + version
	}
	return externalRef{"PACKAGE-MANAGER", "purl", loc + "?goos=" + p.OS + "&goarch=" + p.Arch}
}
