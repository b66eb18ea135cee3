package admission

import (
	"fmt"
	"slices"
	"strings"

	"github.com/imagegate/imagegate/policy"
)

// SnapshotWarnings says what about a policy set makes every admission an
// allow without a word: no objects at all, or a cluster id that no policy or
// strategy names (a typo such as prod-clustr leaves only the strategies
// without a cluster in force). Check prints these, serve logs them, exposes
// them at /readyz and as metrics. clusterID "" (check: every cluster) names
// every cluster.
func SnapshotWarnings(snap *policy.Snapshot, clusterID string) []string {
	if IsEmpty(snap) {
		return []string{"no Attestor, BinarySecurityPolicy or OpaStrategy was found: every image is allowed"}
	}
	if clusterID == "" || ClusterNamed(snap, clusterID) {
		return nil
	}
	named := "none names any cluster"
	if ids := ClusterIDs(snap); len(ids) > 0 {
		named = "they name " + quoteAll(ids)
	}
	return []string{fmt.Sprintf("cluster id %q is named by no BinarySecurityPolicy or OpaStrategy (%s): no signature is required and only strategies without a cluster apply", clusterID, named)}
}

// IsEmpty reports whether snap has no object at all.
func IsEmpty(snap *policy.Snapshot) bool {
	return len(snap.Attestors()) == 0 && len(snap.Policies()) == 0 && len(snap.Strategies()) == 0
}

// ClusterNamed reports whether a BinarySecurityPolicy or OpaStrategy of snap
// names cluster id.
func ClusterNamed(snap *policy.Snapshot, id string) bool {
	return slices.Contains(ClusterIDs(snap), id)
}

// ClusterIDs lists, sorted, every cluster id the policies' clusters and the
// strategies' scopes (or, without scopes, spec.clusterId) name. A strategy
// whose scopes are non-empty ignores its clusterId, so that one does not
// count.
func ClusterIDs(snap *policy.Snapshot) []string {
	var ids []string
	for _, p := range snap.Policies() {
		for _, c := range p.Spec.Clusters {
			ids = append(ids, c.ClusterID)
		}
	}
	for _, s := range snap.Strategies() {
		if len(s.Spec.Scopes) == 0 {
			ids = append(ids, s.Spec.ClusterID)
		}
		for _, sc := range s.Spec.Scopes {
			ids = append(ids, sc.ClusterID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > 0 && ids[0] == "" {
		ids = ids[1:]
	}
	return ids
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
