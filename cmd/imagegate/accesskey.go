package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/imagegate/imagegate/api"
)

// runAccessKey is `imagegate access-key create`: it adds a key to the IAM
// state file (a running serve picks it up within seconds) and prints
// CreateAccessKey's answer, the only time the secret is shown.
func runAccessKey(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: imagegate access-key create --api-state FILE --api-access-key-encryption-key-file FILE --principal NAME [--groups g1|g2]")
		return exitBadUsage
	}
	fs := flag.NewFlagSet("access-key create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	state := fs.String("api-state", "", "the IAM state file serve --api-state uses")
	keyFile := fs.String("api-access-key-encryption-key-file", "", "the key file serve uses to seal access key secrets")
	principal := fs.String("principal", "", "the principal the key authenticates as")
	groups := fs.String("groups", "", "its groups, separated by |")
	if err := fs.Parse(args[1:]); err != nil {
		return exitBadUsage
	}
	if *state == "" || *keyFile == "" || *principal == "" {
		fmt.Fprintln(stderr, "imagegate access-key create: --api-state, --api-access-key-encryption-key-file and --principal are required")
		return exitBadUsage
	}
	sealer, err := api.LoadSealer(*keyFile)
	if err != nil {
		fmt.Fprintln(stderr, "imagegate access-key create:", err)
		return exitBadUsage
	}
	var gs []string
	for _, g := range strings.Split(*groups, "|") {
		if g = strings.TrimSpace(g); g != "" {
			gs = append(gs, g)
		}
	}
	out, err := api.CreateAccessKeyInState(*state, sealer, *principal, gs, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "imagegate access-key create:", err)
		return exitDenied
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
	return exitOK
}
