// Command imagegate is a Kubernetes admission webhook that decides whether a
// pod's images may run. Flags are parsed here and nowhere else.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/imagegate/imagegate/internal/version"
)

// Exit codes shared by the commands.
const (
	exitOK       = 0
	exitDenied   = 1
	exitBadUsage = 2
)

const usage = `imagegate decides whether a pod's images may run.

Commands:
  check    decide manifests offline, as the webhook would
  serve    run the admission webhook
  verify   check an image's signatures against attestors
  scan     import scanner reports into a scan store
  events   list audit events from an audit store
  test     run policy tests (expected decisions of manifests)
  policy push  pack a policy directory as a signed OCI bundle and push it
  access-key create  make a management API access key (printed once)
  version  print the version and VCS revision

Run 'imagegate COMMAND --help' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitBadUsage
	}
	switch args[0] {
	case "check":
		return runCheck(ctx, args[1:], stdin, stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "scan":
		return runScan(args[1:], stdout, stderr)
	case "events":
		return runEvents(args[1:], stdout, stderr)
	case "policy":
		return runPolicy(ctx, args[1:], stdout, stderr)
	case "test":
		return runTest(ctx, args[1:], stdout, stderr)
	case "access-key":
		return runAccessKey(args[1:], stdout, stderr)
	case "verify":
		return runVerify(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, version.Get())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "imagegate: unknown command %q\n\n%s", args[0], usage)
	return exitBadUsage
}
