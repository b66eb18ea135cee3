package version

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestGet(t *testing.T) {
	stamped := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}}, true
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	cases := []struct {
		name              string
		ldVersion, ldRev  string
		read              func() (*debug.BuildInfo, bool)
		version, revision string
	}{
		{"build info", "", "", stamped, "v1.4.0", "abc123+dirty"},
		{"ldflags win", "v2.0.0", "def456", stamped, "v2.0.0", "def456"},
		{"nothing known", "", "", none, "(devel)", "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			Version, Revision = c.ldVersion, c.ldRev
			defer func() { Version, Revision = "", "" }()
			got := get(c.read)
			if got.Version != c.version || got.Revision != c.revision || !strings.HasPrefix(got.GoVersion, "go") {
				t.Errorf("got %+v, want %s %s", got, c.version, c.revision)
			}
		})
	}
}

func TestCollector(t *testing.T) {
	Version, Revision = "v9.9.9", "cafe"
	defer func() { Version, Revision = "", "" }()
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector())
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "imagegate_build_info" || len(mfs[0].Metric) != 1 {
		t.Fatalf("gathered %v, %v", mfs, err)
	}
	labels := map[string]string{}
	for _, l := range mfs[0].Metric[0].Label {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] != "v9.9.9" || labels["revision"] != "cafe" || !strings.HasPrefix(labels["goversion"], "go") || mfs[0].Metric[0].Gauge.GetValue() != 1 {
		t.Errorf("labels %v value %v", labels, mfs[0].Metric[0].Gauge.GetValue())
	}
}
