// Package version says which imagegate is running: the module version and
// VCS revision Go stamps into the binary, unless an image build sets them
// with -ldflags -X (a build from a source tarball has no VCS to stamp).
package version

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at link time, e.g.
//
//	go build -ldflags "-X github.com/imagegate/imagegate/internal/version.Version=v1.2.0 \
//	  -X github.com/imagegate/imagegate/internal/version.Revision=$(git rev-parse HEAD)"
//
// Empty: taken from the build information.
var (
	Version  string
	Revision string
)

// Info is what version and the build_info metric report.
type Info struct {
	Version   string // module version, e.g. v1.2.0; "(devel)" for a local build
	Revision  string // VCS revision, "+dirty" when built from a modified tree; "unknown" when not stamped
	GoVersion string
}

// Get returns the running binary's Info.
func Get() Info {
	return get(debug.ReadBuildInfo)
}

func get(read func() (*debug.BuildInfo, bool)) Info {
	info := Info{Version: Version, Revision: Revision, GoVersion: runtime.Version()}
	if bi, ok := read(); ok {
		if info.Version == "" {
			info.Version = bi.Main.Version
		}
		if info.Revision == "" {
			var rev string
			var dirty bool
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if rev != "" && dirty {
				rev += "+dirty"
			}
			info.Revision = rev
		}
	}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	if info.Revision == "" {
		info.Revision = "unknown"
	}
	return info
}

// String is the line imagegate version prints.
func (i Info) String() string {
	return "imagegate " + i.Version + " (revision " + i.Revision + ", " + i.GoVersion + ")"
}

// Collector is the imagegate_build_info gauge: 1, labelled with the
// version, revision and Go version, so dashboards can tell which build
// answered.
func Collector() prometheus.Collector {
	i := Get()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "imagegate_build_info",
		Help: "Build of the running imagegate (always 1): module version, VCS revision, Go version.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(i.Version, i.Revision, i.GoVersion).Set(1)
	return g
}
