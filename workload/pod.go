package workload

// PodContainer is one container of a pod: its name and image reference.
type PodContainer struct {
	Name, Image string
}

// Pod is what admission decides on of a pod already in the cluster (the
// runtime inventory keeps pods in this trimmed form).
type Pod struct {
	Namespace, Name     string
	Labels              map[string]string
	ServiceAccount      string
	PullSecrets         []string
	Containers          []PodContainer
	InitContainers      []PodContainer
	EphemeralContainers []PodContainer
}

// FromPod reduces a pod to the Object admission would have decided for it,
// through the same code as Decode: the same images (deduplicated, parsed,
// in container order), labels, service account and pull secrets.
func FromPod(p Pod) *Object {
	conv := func(cs []PodContainer) []container {
		out := make([]container, len(cs))
		for i, c := range cs {
			out[i] = container{Name: c.Name, Image: c.Image}
		}
		return out
	}
	refs := make([]localRef, len(p.PullSecrets))
	for i, s := range p.PullSecrets {
		refs[i] = localRef{Name: s}
	}
	m := meta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels}
	return build("Pod", m, podTemplate{Metadata: m, Spec: podSpec{ServiceAccountName: p.ServiceAccount, ImagePullSecrets: refs,
		Containers: conv(p.Containers), InitContainers: conv(p.InitContainers), EphemeralContainers: conv(p.EphemeralContainers)}})
}
