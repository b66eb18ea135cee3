package webhook

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/imagegate/imagegate/workload"
)

// pinPod is the part of a Pod that digest pinning reads: its containers by
// position (a JSON patch addresses them by index) and what names its
// registry credentials.
type pinPod struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		ServiceAccountName string `json:"serviceAccountName"`
		ImagePullSecrets   []struct {
			Name string `json:"name"`
		} `json:"imagePullSecrets"`
		Containers          []pinContainer `json:"containers"`
		InitContainers      []pinContainer `json:"initContainers"`
		EphemeralContainers []pinContainer `json:"ephemeralContainers"`
	} `json:"spec"`
}

type pinContainer struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// pinList is one of a pod's container lists, by its JSON name.
type pinList struct {
	field string
	cs    []pinContainer
}

func (p *pinPod) lists() [3]pinList {
	return [3]pinList{{"containers", p.Spec.Containers}, {"initContainers", p.Spec.InitContainers}, {"ephemeralContainers", p.Spec.EphemeralContainers}}
}

func (p *pinPod) pullSecrets() []string {
	var out []string
	for _, s := range p.Spec.ImagePullSecrets {
		if s.Name != "" {
			out = append(out, s.Name)
		}
	}
	return out
}

// pinTarget is one container image to pin: where it is and what it says.
type pinTarget struct {
	path string // JSON pointer of the image field
	img  workload.Image
}

// pinTargets finds the images of a Pod request to pin: by tag, in a CREATE,
// or changed by an UPDATE (an ephemeral container added through the
// ephemeralcontainers subresource, a container's image set anew). Images
// already by digest, and those that do not parse (the validating webhook
// denies them), are left alone. Existing ephemeral containers are never
// touched: the API server refuses changes to them. skip says why a request
// needs no pinning at all.
func pinTargets(req *request) (pod *pinPod, targets []pinTarget, skip string, err error) {
	switch {
	case req.Operation != "CREATE" && req.Operation != "UPDATE":
		return nil, nil, "operation " + req.Operation, nil
	case req.Kind.Kind != "Pod":
		// Controllers' templates are left as written: rewriting them would
		// make GitOps tools see drift and reconcile for ever.
		return nil, nil, "kind " + req.Kind.Kind, nil
	case req.SubResource != "" && req.SubResource != "ephemeralcontainers":
		return nil, nil, "subresource " + req.SubResource, nil
	}
	pod = &pinPod{}
	if err := json.Unmarshal(req.Object, pod); err != nil {
		return nil, nil, "", fmt.Errorf("decoding the Pod: %w", err)
	}
	if pod.Kind != "" && pod.Kind != "Pod" {
		return nil, nil, "", fmt.Errorf("object is a %s, but the request is for a Pod", pod.Kind)
	}
	var old *pinPod
	if req.Operation == "UPDATE" && len(req.OldObject) > 0 {
		old = &pinPod{}
		if err := json.Unmarshal(req.OldObject, old); err != nil {
			return nil, nil, "", fmt.Errorf("decoding the old Pod: %w", err)
		}
	}
	for l, list := range pod.lists() {
		if req.SubResource == "ephemeralcontainers" && list.field != "ephemeralContainers" {
			continue
		}
		for i, c := range list.cs {
			if old != nil && unchanged(old.lists()[l].cs, c) {
				continue
			}
			img := workload.ParseImage(c.Image)
			if img.Err != nil || img.Digest != "" {
				continue
			}
			img.Container = c.Name
			targets = append(targets, pinTarget{path: fmt.Sprintf("/spec/%s/%d/image", list.field, i), img: img})
		}
	}
	if len(targets) == 0 {
		return pod, nil, "no image by tag", nil
	}
	return pod, targets, "", nil
}

// unchanged reports whether olds has a container of c's name with c's image.
func unchanged(olds []pinContainer, c pinContainer) bool {
	for _, o := range olds {
		if o.Name == c.Name {
			return o.Image == c.Image
		}
	}
	return false
}

// pinned is the image by digest. The tag stays (nginx:1.25@sha256:…, an
// implicit latest written out): runtimes pull by the digest, and strategies
// whose whiteList names tags decide the pinned image as they did the tag.
func pinned(img workload.Image, digest string) string {
	ref := img.Ref
	if last := ref[strings.LastIndexByte(ref, '/')+1:]; !strings.Contains(last, ":") {
		ref += ":" + img.Tag
	}
	return ref + "@" + digest
}

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}
