package console

import (
	"bytes"
	"context"
	"fmt"

	"github.com/imagegate/imagegate/check"
	"github.com/imagegate/imagegate/workload"
)

// ManifestChecker decides pasted manifests with the check engine, as
// imagegate check does with the policies and facts serve has in force.
type ManifestChecker struct {
	Checker *check.Checker
	// MaxObjects bounds the workloads of one manifest (0: DefaultMaxCheckObjects).
	MaxObjects int
}

var _ Checker = (*ManifestChecker)(nil)

// Check decodes the manifest strictly (a typo is an error, with its line)
// and decides each workload in it.
func (m *ManifestChecker) Check(ctx context.Context, manifest []byte) ([]check.Result, error) {
	objs, err := workload.ReadManifests([]string{workload.Stdin}, bytes.NewReader(manifest))
	if err != nil {
		return nil, err
	}
	limit := m.MaxObjects
	if limit <= 0 {
		limit = DefaultMaxCheckObjects
	}
	if len(objs) > limit {
		return nil, fmt.Errorf("the manifest has %d workloads; at most %d are checked at once", len(objs), limit)
	}
	out := make([]check.Result, 0, len(objs))
	for _, l := range objs {
		r, err := m.Checker.Decide(ctx, l)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
