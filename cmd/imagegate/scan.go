package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/imagegate/imagegate/scan"
)

func runScan(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintln(stderr, "usage: imagegate scan import --store PATH [--format auto|trivy|vulnerabilityreport|malicious-feed] FILE...")
		return exitBadUsage
	}
	fs := newFlagSet("scan import", "scan import --store PATH [--format FORMAT] FILE...", stderr)
	store := fs.String("store", "", "scan store file (created if missing)")
	format := fs.String("format", scan.FormatAuto, "report format: auto, trivy, vulnerabilityreport or malicious-feed")
	files, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return flagError(err)
	}
	if *store == "" || len(files) == 0 {
		fmt.Fprintln(stderr, "imagegate scan import: --store and at least one FILE are required")
		return exitBadUsage
	}
	failed := false
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil {
			var recs []*scan.Record
			var mal map[string]string
			if recs, mal, err = scan.Parse(*format, data, time.Now()); err == nil {
				err = scan.Import(*store, recs, mal)
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
