package api

import (
	"strings"

	"github.com/imagegate/imagegate/iam"
	"github.com/imagegate/imagegate/policy"
)

var bspFields = []field{
	{"Remark", "remark", fString},
	{"Policy", "policy", fJSON},
	{"Clusters", "clusters", fJSON},
	{"Status", "status", fString},
	{"SourceIp", "sourceIp", fString},
}

func bspResource(name string) string { return "imagegate:binarysecuritypolicy/" + name }

// bspContext gives conditions the clusters, namespaces, status and
// attestors the policy will have.
func bspContext(p *policy.BinarySecurityPolicy) map[string][]string {
	var clusters, namespaces []string
	for _, c := range p.Spec.Clusters {
		clusters = append(clusters, c.ClusterID)
		if len(c.Namespaces) == 0 {
			namespaces = append(namespaces, "*")
		}
		namespaces = append(namespaces, c.Namespaces...)
	}
	status := p.Spec.Status
	if status == "" {
		status = policy.StatusEnabled
	}
	return map[string][]string{iam.KeyClusterID: clusters, iam.KeyNamespace: namespaces,
		iam.KeyStatus: {status}, iam.KeyAttestor: p.Spec.Policy.RequiredAttestors}
}

func (h *Handler) createBSP(c *call) (map[string]any, error) {
	return h.writeBSP(c, "CreateBinarySecurityPolicy", true)
}
func (h *Handler) modifyBSP(c *call) (map[string]any, error) {
	return h.writeBSP(c, "ModifyBinarySecurityPolicy", false)
}

func (h *Handler) writeBSP(c *call, op string, create bool) (map[string]any, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	name, err := c.required("Name")
	if err != nil {
		return nil, err
	}
	for _, p := range []string{"Policy", "Clusters"} {
		if _, err := c.required(p); err != nil {
			return nil, err
		}
	}
	snap, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	existing := findBSP(snap, name)
	if !create && existing == nil {
		if err := c.authorize(op, bspResource(name), nil); err != nil {
			return nil, err
		}
		return nil, errNotFound("BinarySecurityPolicy", name)
	}
	obj := &policy.BinarySecurityPolicy{TypeMeta: policy.TypeMeta{APIVersion: policy.APIVersion, Kind: policy.KindBinarySecurityPolicy},
		Metadata: policy.ObjectMeta{Name: name}}
	if existing != nil && !create {
		// Allowed on the policy as it is, not only as it will be (see
		// updateOpa).
		if err := c.authorize(op, bspResource(name), bspContext(existing)); err != nil {
			return nil, err
		}
	}
	if existing != nil {
		obj.Metadata = existing.Metadata
		obj.Spec = existing.Spec
	}
	obj.Spec.Name = name
	if err := c.setFields(&obj.Spec, bspFields); err != nil {
		return nil, err
	}
	if err := c.authorize(op, bspResource(name), bspContext(obj)); err != nil {
		return nil, err
	}
	if create && existing != nil {
		return nil, errExists("BinarySecurityPolicy", name)
	}
	if err := h.store.Apply(Change{Put: obj}); err != nil {
		return nil, applyErr(err, refOf(obj), bspFields, "Name")
	}
	return nil, nil
}

func findBSP(snap *policy.Snapshot, name string) *policy.BinarySecurityPolicy {
	for _, p := range snap.Policies() {
		if p.Metadata.Name == name {
			return p
		}
	}
	return nil
}

func (h *Handler) deleteBSP(c *call) (map[string]any, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	name, err := c.required("Name")
	if err != nil {
		return nil, err
	}
	snap, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	existing := findBSP(snap, name)
	var ctx map[string][]string
	if existing != nil {
		ctx = bspContext(existing)
	}
	if err := c.authorize("DeleteBinarySecurityPolicy", bspResource(name), ctx); err != nil {
		return nil, err
	}
	if existing == nil {
		return nil, errNotFound("BinarySecurityPolicy", name)
	}
	ref := Ref{policy.KindBinarySecurityPolicy, name}
	if err := h.store.Apply(Change{Delete: &ref}); err != nil {
		return nil, applyErr(err, ref, bspFields, "Name")
	}
	return nil, nil
}

func (h *Handler) describeBSPs(c *call) (map[string]any, error) {
	page, size, err := c.page("CurrentPage")
	if err != nil {
		return nil, err
	}
	filter, _ := c.param("Name")
	if err := c.authorize("DescribeBinarySecurityPolicies", bspResource("*"), nil); err != nil {
		return nil, err
	}
	snap, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	var list []any
	for _, p := range snap.Policies() {
		if filter != "" && !strings.Contains(p.Metadata.Name, filter) {
			continue
		}
		spec := p.Spec
		if spec.Status == "" {
			spec.Status = policy.StatusEnabled
		}
		if spec.Policy.PolicyMode == "" {
			spec.Policy.PolicyMode = policy.PolicyModeRequireAttestor
		}
		list = append(list, pascal(spec))
	}
	return map[string]any{"PolicyList": pageOf(list, page, size), "PageInfo": pageInfo(page, size, len(list))}, nil
}

func pageInfo(page, size, total int) map[string]any {
	count := max(0, min(size, total-(page-1)*size))
	return map[string]any{"CurrentPage": page, "PageSize": size, "TotalCount": total, "Count": count}
}

var attestorFields = []field{
	{"Description", "description", fString},
	{"PublicKeys", "publicKeys", fJSON},
	{"Keyless", "keyless", fJSON},
	{"TransparencyLog", "transparencyLog", fString},
}

func attestorResource(name string) string { return "imagegate:attestor/" + name }

func (h *Handler) createAttestor(c *call) (map[string]any, error) {
	return h.writeAttestor(c, "CreateAttestor", true)
}
func (h *Handler) modifyAttestor(c *call) (map[string]any, error) {
	return h.writeAttestor(c, "ModifyAttestor", false)
}

func (h *Handler) writeAttestor(c *call, op string, create bool) (map[string]any, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	name, err := c.required("Name")
	if err != nil {
		return nil, err
	}
	snap, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	existing, found := snap.Attestor(name)
	if !create && !found {
		if err := c.authorize(op, attestorResource(name), nil); err != nil {
			return nil, err
		}
		return nil, errNotFound("Attestor", name)
	}
	obj := &policy.Attestor{TypeMeta: policy.TypeMeta{APIVersion: policy.APIVersion, Kind: policy.KindAttestor},
		Metadata: policy.ObjectMeta{Name: name}}
	if found {
		obj.Metadata, obj.Spec = existing.Metadata, existing.Spec
	}
	if err := c.setFields(&obj.Spec, attestorFields); err != nil {
		return nil, err
	}
	if err := c.authorize(op, attestorResource(name), map[string][]string{iam.KeyAttestor: {name}}); err != nil {
		return nil, err
	}
	if create && found {
		return nil, errExists("Attestor", name)
	}
	if err := h.store.Apply(Change{Put: obj}); err != nil {
		return nil, applyErr(err, refOf(obj), attestorFields, "Name")
	}
	return nil, nil
}

func (h *Handler) deleteAttestor(c *call) (map[string]any, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	name, err := c.required("Name")
	if err != nil {
		return nil, err
	}
	if err := c.authorize("DeleteAttestor", attestorResource(name), map[string][]string{iam.KeyAttestor: {name}}); err != nil {
		return nil, err
	}
	snap, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	if _, found := snap.Attestor(name); !found {
		return nil, errNotFound("Attestor", name)
	}
	ref := Ref{policy.KindAttestor, name}
	if err := h.store.Apply(Change{Delete: &ref}); err != nil {
		return nil, applyErr(err, ref, attestorFields, "Name")
	}
	return nil, nil
}

func (h *Handler) describeAttestors(c *call) (map[string]any, error) {
	page, size, err := c.page("CurrentPage")
	if err != nil {
		return nil, err
	}
	if err := c.authorize("DescribeAttestors", attestorResource("*"), nil); err != nil {
		return nil, err
	}
	snap, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	var list []any
	for _, a := range snap.Attestors() {
		m := pascal(a.Spec).(map[string]any)
		m["Name"] = a.Metadata.Name
		list = append(list, m)
	}
	return map[string]any{"Attestors": pageOf(list, page, size), "PageInfo": pageInfo(page, size, len(list))}, nil
}
