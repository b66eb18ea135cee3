package main

import (
	"flag"

	"github.com/imagegate/imagegate/attestation"
	"github.com/imagegate/imagegate/webhook"
)

// pinFlags turn digest pinning (the mutating webhook at /mutate) on or off.
type pinFlags struct {
	on bool
}

func (p *pinFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&p.on, "pin-digests", true, "answer POST /mutate by pinning each Pod's images by tag to the digest the tag names now; false: /mutate admits every Pod unchanged")
}

// mutator is /mutate's handler. It pins only when live verification is on
// (v is nil with --facts: there is no registry to ask), and with the pods'
// pull secrets when known (keychains may be nil).
func (p *pinFlags) mutator(v *attestation.Verifier, keychains attestation.KeychainSource, opts ...webhook.Option) (*webhook.Mutator, error) {
	if !p.on || v == nil {
		return webhook.NewMutator(nil, opts...)
	}
	if keychains != nil {
		opts = append(opts, webhook.WithPullCredentials(keychains))
	}
	return webhook.NewMutator(v, opts...)
}
