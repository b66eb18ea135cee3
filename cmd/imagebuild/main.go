// Command imagebuild builds imagegate's OCI image without a container
// daemon (make image): see package imagebuild and docs/kubernetes.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/imagegate/imagegate/imagebuild"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	out := fs.String("out", "bin/image", "OCI image layout directory to write (replaced)")
	ref := fs.String("ref", "imagegate:dev", "name of the image in the layout's index.json")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated os/arch list")
	push := fs.String("push", "", "also push the image index to this reference (e.g. registry.example.com/imagegate:v1)")
	ca := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA certificates installed in the image")
	epoch := fs.String("source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "timestamp of every file and of the image, in Unix seconds (default: the HEAD commit's time)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ps, err := imagebuild.ParsePlatforms(*platforms)
	if err != nil {
		return err
	}
	t, err := sourceTime(*epoch)
	if err != nil {
		return err
	}
	labels := map[string]string{"org.opencontainers.image.source": "https://github.com/imagegate/imagegate",
		"org.opencontainers.image.created": t.UTC().Format(time.RFC3339)}
	if rev := git("rev-parse", "HEAD"); rev != "" {
		labels["org.opencontainers.image.revision"] = rev
	}
	idx, err := imagebuild.Build(context.Background(), imagebuild.Config{Platforms: ps, CABundle: *ca, Time: t, Labels: labels})
	if err != nil {
		return err
	}
	if err := imagebuild.WriteLayout(*out, idx, *ref); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s (%s)\n", *out, d, *platforms)
	if *push != "" {
		pushed, err := imagebuild.Push(idx, *push)
		if err != nil {
			return err
		}
		fmt.Println(pushed)
	}
	return nil
}

// sourceTime is SOURCE_DATE_EPOCH, else the HEAD commit's time, else the
// Unix epoch: never the clock, so that a rebuild gives the same digest.
func sourceTime(epoch string) (time.Time, error) {
	if epoch == "" {
		epoch = git("log", "-1", "--format=%ct")
	}
	if epoch == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(epoch), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("source date epoch %q: %v", epoch, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

func git(args ...string) string {
	b, err := exec.Command("git", args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
