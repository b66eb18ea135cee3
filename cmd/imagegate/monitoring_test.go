package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// The dashboard and the alerts shipped in deploy/ (and in the chart, as
// copies), checked against a real imagegate serve: a renamed metric or
// label, or a query that can never match, fails here rather than as an
// empty panel or an alert that never fires.

const (
	dashboardFile = "../../deploy/grafana/imagegate.json"
	rulesFile     = "../../deploy/prometheus/imagegate-rules.yaml"
	monitoringDoc = "../../docs/monitoring.md"
	runbookBase   = "https://github.com/imagegate/imagegate/blob/main/docs/monitoring.md#"
)

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name, Type string
			Query      any `json:"query"`
			Datasource any `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	Targets    []struct {
		Expr       string         `json:"expr"`
		Datasource map[string]any `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// ruleFile is a PrometheusRule, decoded strictly: a misspelt field fails.
type ruleFile struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	} `yaml:"spec"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// grafanaVar is a dashboard variable reference: $name or ${name}.
var grafanaVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// expandVars gives a dashboard query the values Grafana would: intervals
// for the interval variables, the "All" value for the others.
func expandVars(q string, defined map[string]bool) (string, error) {
	var err error
	out := grafanaVar.ReplaceAllStringFunc(q, func(v string) string {
		name := grafanaVar.FindStringSubmatch(v)[1]
		switch {
		case name == "__rate_interval" || name == "__interval" || name == "__range":
			return "5m"
		case !defined[name]:
			err = fmt.Errorf("variable $%s is not defined by the dashboard", name)
		}
		return ".*"
	})
	return out, err
}

func readDashboard(t *testing.T) (dashboard, map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	return d, vars
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f ruleFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return f
}

// TestMonitoringQueries: every query of the dashboard and every alert
// expression parses, and names only series, and labels, that imagegate
// serve exposes.
func TestMonitoringQueries(t *testing.T) {
	c, postgres := servedCatalog(t)
	if !postgres {
		// Without PostgreSQL its audit store's series cannot be scraped;
		// the rest is checked all the same.
		t.Log("PostgreSQL not installed: imagegate_audit_postgres_* taken as exposed unchecked")
		c["imagegate_audit_postgres_dropped_total"] = series{labels: map[string]bool{}, counter: true}
		c["imagegate_audit_postgres_backlog"] = series{labels: map[string]bool{}}
	}
	used := map[string]bool{}
	check := func(t *testing.T, where, expr string) {
		t.Helper()
		names, err := checkExpr(c, expr)
		if err != nil {
			t.Errorf("%s: %v\n%s", where, err, expr)
		}
		for _, n := range names {
			used[n] = true
		}
	}
	t.Run("dashboard", func(t *testing.T) {
		d, vars := readDashboard(t)
		n := 0
		for _, p := range allPanels(d.Panels) {
			for i, tg := range p.Targets {
				q, err := expandVars(tg.Expr, vars)
				if err != nil {
					t.Errorf("panel %q query %d: %v", p.Title, i, err)
				}
				check(t, fmt.Sprintf("panel %q query %d", p.Title, i), q)
				n++
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, _ := v.Query.(string)
			m := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`).FindStringSubmatch(q)
			if m == nil {
				t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q)
				continue
			}
			sel, err := expandVars(m[1], vars)
			if err != nil {
				t.Errorf("variable %s: %v", v.Name, err)
			}
			// The label must be on the series: wrapping the selector in an
			// aggregation by it has the checker say so.
			check(t, "variable "+v.Name, fmt.Sprintf("count by (%s) (%s)", m[2], sel))
		}
		if n < 30 {
			t.Errorf("only %d queries in the dashboard", n)
		}
	})
	t.Run("alerts", func(t *testing.T) {
		for _, g := range readRules(t).Spec.Groups {
			for _, r := range g.Rules {
				check(t, "alert "+r.Alert, r.Expr)
			}
		}
	})
	// The test proves something only if it saw the series: every
	// imagegate series the queries use came from the scrape.
	for _, want := range []string{"imagegate_admission_duration_seconds_bucket", "imagegate_registry_requests_total",
		"imagegate_verification_cache_total", "imagegate_serving_certificate_expiry_timestamp_seconds", "imagegate_policy_set_rejected",
		"imagegate_audit_events_dropped_total", "imagegate_mutation_duration_seconds_bucket", "imagegate_scan_store_up"} {
		if !used[want] {
			t.Errorf("no query uses %s", want)
		}
	}
}

// allPanels flattens rows' panels into the list.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// TestDashboardShape: what Grafana needs to import the dashboard anywhere.
func TestDashboardShape(t *testing.T) {
	d, vars := readDashboard(t)
	if d.UID == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, schemaVersion %d: want a uid and schemaVersion 36 or later", d.UID, d.SchemaVersion)
	}
	for _, v := range []string{"datasource", "cluster", "namespace", "instance"} {
		if !vars[v] {
			t.Errorf("no dashboard variable %s", v)
		}
	}
	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		if prev, ok := ids[p.ID]; ok {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		// Every panel and query on the chosen data source: a fixed uid
		// works only in the Grafana the dashboard was exported from.
		if p.Datasource["uid"] != "${datasource}" {
			t.Errorf("panel %q data source %v, want uid ${datasource}", p.Title, p.Datasource)
		}
		for _, tg := range p.Targets {
			if tg.Datasource["uid"] != "${datasource}" {
				t.Errorf("panel %q query data source %v, want uid ${datasource}", p.Title, tg.Datasource)
			}
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}

// TestAlertRules: every alert is complete (severity, summary, description,
// a runbook in docs/monitoring.md), its "for" is a duration and its
// annotation templates parse.
func TestAlertRules(t *testing.T) {
	f := readRules(t)
	if f.APIVersion != "monitoring.coreos.com/v1" || f.Kind != "PrometheusRule" || f.Metadata.Name == "" {
		t.Fatalf("%s: apiVersion %q kind %q name %q: want a monitoring.coreos.com/v1 PrometheusRule", rulesFile, f.APIVersion, f.Kind, f.Metadata.Name)
	}
	doc, err := os.ReadFile(monitoringDoc)
	if err != nil {
		t.Fatal(err)
	}
	// The functions of Prometheus's alert templates the annotations use.
	funcs := template.FuncMap{}
	for _, fn := range []string{"humanize", "humanizePercentage", "humanizeDuration", "humanize1024", "humanizeTimestamp", "title", "toUpper", "toLower"} {
		funcs[fn] = func(v any) string { return fmt.Sprint(v) }
	}
	seen := map[string]bool{}
	n := 0
	for _, g := range f.Spec.Groups {
		for _, r := range g.Rules {
			n++
			t.Run(r.Alert+"/"+r.Labels["severity"], func(t *testing.T) {
				if r.Alert == "" || !strings.HasPrefix(r.Alert, "Imagegate") {
					t.Errorf("alert name %q: want Imagegate…", r.Alert)
				}
				key := r.Alert + "/" + r.Labels["severity"]
				if seen[key] {
					t.Errorf("two rules %s", key)
				}
				seen[key] = true
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("severity %q: want warning or critical", s)
				}
				if r.For != "" {
					if _, err := model.ParseDuration(r.For); err != nil {
						t.Errorf("for: %v", err)
					}
				}
				for _, a := range []string{"summary", "description", "runbook_url"} {
					if r.Annotations[a] == "" {
						t.Errorf("no %s annotation", a)
					}
				}
				for a, text := range r.Annotations {
					tmpl := "{{$labels := .Labels}}{{$value := .Value}}" + text
					if _, err := template.New(a).Funcs(funcs).Parse(tmpl); err != nil {
						t.Errorf("annotation %s: %v", a, err)
					}
				}
				u, err := url.Parse(r.Annotations["runbook_url"])
				if err != nil || !strings.HasPrefix(r.Annotations["runbook_url"], runbookBase) || u.Fragment != strings.ToLower(r.Alert) {
					t.Errorf("runbook_url %q: want %s%s", r.Annotations["runbook_url"], runbookBase, strings.ToLower(r.Alert))
				}
				if !slices.Contains(strings.Split(string(doc), "\n"), "### "+r.Alert) {
					t.Errorf("%s has no section ### %s", monitoringDoc, r.Alert)
				}
			})
		}
	}
	if n < 8 {
		t.Errorf("only %d alerts", n)
	}
}

// TestChartMonitoringCopies: the chart ships the dashboard and the rules
// as files of its own (a chart cannot read outside its directory); they
// must be deploy/'s.
func TestChartMonitoringCopies(t *testing.T) {
	for src, chartCopy := range map[string]string{
		dashboardFile: "../../deploy/helm/imagegate/monitoring/imagegate.json",
		rulesFile:     "../../deploy/helm/imagegate/monitoring/imagegate-rules.yaml",
	} {
		a, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(chartCopy)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: cp %[2]s %[1]s", chartCopy, src)
		}
	}
}
