package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/imagegate/imagegate/scan"
)

const scanUsage = "usage: imagegate scan import --store PATH [--format auto|trivy|vulnerabilityreport|malicious-feed] FILE...\n" +
	"       imagegate scan clear-malicious --store PATH DIGEST..."

func runScan(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, scanUsage)
		return exitBadUsage
	}
	switch args[0] {
	case "import":
		return runScanImport(args[1:], stdout, stderr)
	case "clear-malicious":
		return runClearMalicious(args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, scanUsage)
	return exitBadUsage
}

func runScanImport(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("scan import", "scan import --store PATH [--format FORMAT] FILE...", stderr)
	store := fs.String("store", "", "scan store: a file (created if missing) or a postgres:// URL")
	format := fs.String("format", scan.FormatAuto, "report format: auto, trivy, vulnerabilityreport or malicious-feed")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if *store == "" || len(files) == 0 {
		fmt.Fprintln(stderr, "imagegate scan import: --store and at least one FILE are required")
		return exitBadUsage
	}
	st := newStores(slog.New(slog.DiscardHandler), nil)
	defer st.close()
	target, _, err := st.scan(context.Background(), *store)
	if err != nil {
		fmt.Fprintf(stderr, "imagegate scan import: --store: %v\n", err)
		return exitBadUsage
	}
	failed := false
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil {
			var recs []*scan.Record
			var mal map[string]string
			if recs, mal, err = scan.Parse(*format, data, time.Now()); err == nil {
				// A report older than the stored scan of its image is
				// refused (scan.StaleError names both times).
				err = target.Import(context.Background(), recs, mal, scan.RefuseStale())
				if err == nil {
					fmt.Fprintf(stdout, "%s: imported %d scan(s), %d malicious digest(s)\n", f, len(recs), len(mal))
				}
			}
		}
		if err != nil {
			// Each report is imported whole or not at all; the others still are.
			fmt.Fprintf(stderr, "imagegate scan import: %s: %v\n", f, err)
			failed = true
		}
	}
	if failed {
		return exitBadUsage
	}
	return exitOK
}

// runClearMalicious removes malicious marks: reports never do.
func runClearMalicious(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("scan clear-malicious", "scan clear-malicious --store PATH DIGEST...", stderr)
	store := fs.String("store", "", "scan store: a file or a postgres:// URL")
	digests, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if *store == "" || len(digests) == 0 {
		fmt.Fprintln(stderr, "imagegate scan clear-malicious: --store and at least one DIGEST are required")
		return exitBadUsage
	}
	st := newStores(slog.New(slog.DiscardHandler), nil)
	defer st.close()
	target, _, err := st.scan(context.Background(), *store)
	if err != nil {
		fmt.Fprintf(stderr, "imagegate scan clear-malicious: --store: %v\n", err)
		return exitBadUsage
	}
	code := exitOK
	for _, d := range digests {
		found, err := target.ClearMalicious(context.Background(), d)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "imagegate scan clear-malicious: %s: %v\n", d, err)
			code = exitBadUsage
		case !found:
			fmt.Fprintf(stderr, "imagegate scan clear-malicious: %s is not marked malicious\n", d)
			code = exitBadUsage
		default:
			fmt.Fprintf(stdout, "%s: malicious mark cleared\n", d)
		}
	}
	return code
}
