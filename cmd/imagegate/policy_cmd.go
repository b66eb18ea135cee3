package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imagegate/imagegate/bundle"
	"github.com/sigstore/sigstore/pkg/signature"
)

const policyUsage = `usage: imagegate policy push DIR REF [--key cosign.key]

  push  validate the policy set of DIR (as serve --policies reads it), push it
        to REF (oci://REGISTRY/REPOSITORY:TAG) as a policy bundle and, with
        --key, sign it with that cosign key (password in COSIGN_PASSWORD)
`

// runPolicy is imagegate policy: policy bundles (docs/policy-bundles.md).
func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "push" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, policyUsage)
			return exitOK
		}
		fmt.Fprint(stderr, policyUsage)
		return exitBadUsage
	}
	return runPolicyPush(ctx, args[1:], stdout, stderr)
}

func runPolicyPush(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("policy push", "policy push DIR oci://REGISTRY/REPOSITORY:TAG [--key cosign.key] [flags]", stderr)
	key := fs.String("key", "", "cosign private key (cosign generate-key-pair) to sign the bundle with; its password in COSIGN_PASSWORD. Without it the bundle is pushed unsigned and the cosign command to sign it is printed")
	var insecure stringList
	fs.Var(&insecure, "insecure-registries", "registries (host or host:port) that may be reached over plain HTTP; loopback ones always may")
	maxBytes := fs.Int64("max-bytes", bundle.DefaultMaxBytes, "largest bundle made (its files together): as large as serve --policy-bundle-max-bytes reads")
	maxLayers := fs.Int("max-layers", bundle.DefaultMaxLayers, "most files in a bundle: as many as serve --policy-bundle-max-layers reads")
	timeout := fs.Duration("timeout", 2*time.Minute, "time allowed for the registry")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "imagegate policy push: "+format+"\n", a...)
		return exitBadUsage
	}
	if len(pos) != 2 {
		return bad("expected DIR and REF, got %d arguments", len(pos))
	}
	dir, ref := pos[0], pos[1]
	opts := []bundle.Option{bundle.WithMaxBytes(*maxBytes), bundle.WithMaxLayers(*maxLayers), bundle.WithInsecureRegistries(insecure...),
		bundle.WithRemoteOptions(remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithUserAgent("imagegate"))}
	if _, err := bundle.ParseRef(ref, insecure...); err != nil {
		return bad("%v", err)
	}
	b, err := bundle.Pack(dir, opts...)
	var ie *bundle.InvalidError
	var le *bundle.LimitError
	switch {
	case errors.As(err, &ie):
		fmt.Fprintf(stderr, "imagegate policy push: refused, nothing pushed: %v\n", err)
		return exitDenied
	case errors.As(err, &le):
		return bad("refused, nothing pushed: %v", err)
	case err != nil:
		return bad("%v", err)
	}
	sv, err := loadSigningKey(*key)
	if err != nil {
		return bad("--key %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	d, err := b.Push(ctx, ref, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "imagegate policy push: %v\n", err)
		return exitDenied
	}
	if sv == nil {
		fmt.Fprintf(stdout, "%s\n", d)
		fmt.Fprintf(stderr, "imagegate policy push: pushed unsigned; serve refuses it until it is signed:\n  cosign sign --key cosign.key --tlog-upload=false %s\n", d)
		return exitOK
	}
	if err := bundle.Sign(ctx, d, sv, opts...); err != nil {
		fmt.Fprintf(stderr, "imagegate policy push: pushed %s, but not signed: %v\n", d, err)
		return exitDenied
	}
	fmt.Fprintf(stdout, "%s\n", d)
	fmt.Fprintf(stderr, "imagegate policy push: %d files (%d attestors, %d policies, %d strategies), signed\n",
		len(b.Files), len(b.Snapshot.Attestors()), len(b.Snapshot.Policies()), len(b.Snapshot.Strategies()))
	return exitOK
}

// loadSigningKey loads the cosign key before anything is pushed, so a wrong
// password does not leave an unsigned bundle behind; nil without a key.
func loadSigningKey(path string) (signature.SignerVerifier, error) {
	if path == "" {
		return nil, nil
	}
	return bundle.LoadKey(path, []byte(os.Getenv("COSIGN_PASSWORD")))
}
