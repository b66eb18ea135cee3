package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/pgstore"
)

// runEvents is imagegate events: a query of the audit store (docs/audit.md).
func runEvents(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("events", "events --store PATH [--type admission|api|runtime] [--principal P] [--cluster ID] [--namespace NS] [--action block|alert|allow|unsigned|error|resolved] [--image GLOB] [--since 24h] [--until T] [--limit N] [--page-token T] [-o table|json]", stderr)
	var p audit.QueryParams
	var store, output string
	var limit int
	fs.StringVar(&store, "store", "", "audit store: the file or postgres:// URL of serve --audit-store")
	fs.StringVar(&p.Type, "type", "", "only admission events, management API calls (api) or running workloads decided again (runtime); default all")
	fs.StringVar(&p.Principal, "principal", "", "only management API calls by this principal (implies --type api)")
	fs.StringVar(&p.Cluster, "cluster", "", "only events of this cluster id (serve --cluster-id), for a store several clusters share")
	fs.StringVar(&p.Namespace, "namespace", "", "only events in this namespace")
	fs.StringVar(&p.Action, "action", "", "only events with one of these actions (comma-separated): block, alert, allow, unsigned, error, resolved (runtime); with --type api, API actions such as imagegate:CreateOpaStrategyNew")
	fs.StringVar(&p.Image, "image", "", "only events with an image whose repository matches this glob (* and ?)")
	fs.StringVar(&p.Since, "since", "", "only events at or after this time: RFC 3339 or an age (90m, 24h, 7d)")
	fs.StringVar(&p.Until, "until", "", "only events at or before this time: RFC 3339 or an age")
	fs.IntVar(&limit, "limit", audit.DefaultLimit, fmt.Sprintf("events per page (1 to %d)", audit.MaxLimit))
	fs.StringVar(&p.PageToken, "page-token", "", "continue after a previous page (its nextPageToken)")
	fs.StringVar(&output, "o", "table", "output: table or json")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "imagegate events: unexpected arguments %q\n", fs.Args())
		return exitBadUsage
	case store == "":
		fmt.Fprintln(stderr, "imagegate events: required: --store")
		return exitBadUsage
	case output != "table" && output != "json":
		fmt.Fprintf(stderr, "imagegate events: -o %q: expected table or json\n", output)
		return exitBadUsage
	}
	if _, err := os.Stat(store); err != nil && !pgstore.IsURL(store) {
		fmt.Fprintf(stderr, "imagegate events: --store: %v\n", err)
		return exitBadUsage
	}
	p.Limit = fmt.Sprint(limit)
	q, err := audit.ParseQuery(p, time.Now())
	if err != nil {
		var fe *audit.FilterError
		if errors.As(err, &fe) {
			fe.Param = "--" + strings.ReplaceAll(fe.Param, "pageToken", "page-token")
		}
		fmt.Fprintf(stderr, "imagegate events: %v\n", err)
		return exitBadUsage
	}
	st := newStores(slog.New(slog.DiscardHandler), nil)
	defer st.close()
	querier, err := st.querier(context.Background(), store)
	if err != nil {
		fmt.Fprintf(stderr, "imagegate events: %v\n", err)
		return exitBadUsage
	}
	page, err := querier.Query(q)
	if err != nil {
		fmt.Fprintf(stderr, "imagegate events: %v\n", err)
		return exitBadUsage
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(page); err != nil {
			fmt.Fprintf(stderr, "imagegate events: %v\n", err)
			return exitBadUsage
		}
		return exitOK
	}
	switch q.Type {
	case audit.TypeAPI:
		printAPICalls(stdout, page)
		return exitOK
	case audit.TypeRuntime:
		printRuntime(stdout, page)
		return exitOK
	}
	printEvents(stdout, page)
	return exitOK
}

func printEvents(w io.Writer, page *audit.Page) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tNAMESPACE\tOBJECT\tDECISION\tACTIONS\tUSER\tIMAGES")
	for _, ev := range page.Events {
		if c := ev.API; c != nil {
			// A management API call among admissions: its resource as the
			// object, its action, and what decided it.
			fmt.Fprintf(tw, "%s\t-\t%s\t%s\t%s\t%s\t%s\n", ev.Time.Format(time.RFC3339), c.Resource, ev.Decision, c.Action, c.Principal, decidedBy(ev))
			continue
		}
		var imgs []string
		for _, img := range ev.Images {
			if img.Action != "pass" {
				imgs = append(imgs, img.Image+" ("+img.Action+")")
			}
		}
		dry := ""
		if ev.DryRun {
			dry = " (dry run)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s%s\t%s\t%s\t%s\n", ev.Time.Format(time.RFC3339), ev.Namespace, ev.Kind, ev.Name,
			ev.Decision, dry, strings.Join(ev.Actions, ","), ev.User.Username, strings.Join(imgs, ", "))
	}
	tw.Flush()
	if page.NextPageToken != "" {
		fmt.Fprintf(w, "\nmore: --page-token %s\n", page.NextPageToken)
	}
}

// printRuntime is the table of a --type runtime query: which running
// workload changed, how, and after what.
func printRuntime(w io.Writer, page *audit.Page) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tNAMESPACE\tWORKLOAD\tCHANGE\tACTIONS\tPODS\tAFTER\tIMAGES")
	for _, ev := range page.Events {
		rt := ev.Runtime
		if rt == nil {
			continue
		}
		var imgs []string
		for _, img := range ev.Images {
			if img.Action != "pass" {
				imgs = append(imgs, img.Image+" ("+img.Action+")")
			}
		}
		after := rt.Trigger
		if rt.Detail != "" {
			after += ": " + rt.Detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%d\t%s\t%s\n", ev.Time.Format(time.RFC3339), ev.Namespace, ev.Kind, ev.Name,
			rt.Change, strings.Join(ev.Actions, ","), rt.Pods, after, strings.Join(imgs, ", "))
	}
	tw.Flush()
	if page.NextPageToken != "" {
		fmt.Fprintf(w, "\nmore: --page-token %s\n", page.NextPageToken)
	}
}

// printAPICalls is the table of a --type api query.
func printAPICalls(w io.Writer, page *audit.Page) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tPRINCIPAL\tACTION\tRESOURCE\tSTATUS\tCODE\tREQUEST ID\tDECIDED BY")
	for _, ev := range page.Events {
		c := ev.API
		if c == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", ev.Time.Format(time.RFC3339), c.Principal, c.Action, c.Resource,
			c.Status, c.Code, c.RequestID, decidedBy(ev))
	}
	tw.Flush()
	if page.NextPageToken != "" {
		fmt.Fprintf(w, "\nmore: --page-token %s\n", page.NextPageToken)
	}
}

// decidedBy is an API call's decision, and for a summary of refused calls
// how many it stands for.
func decidedBy(ev *audit.Event) string {
	if ev.Count > 0 {
		return strings.TrimSpace(fmt.Sprintf("%s [%d refused calls like this until %s]", ev.API.Decision, ev.Count, ev.Until.Format(time.RFC3339)))
	}
	return ev.API.Decision
}
