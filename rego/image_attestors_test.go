package rego_test

import (
	"context"
	"slices"
	"testing"

	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/rego"
	"github.com/imagegate/imagegate/workload"
)

// ImageAttestors names what fact gathering must verify for one image: the
// attestors of the policies in force in the namespace whose images globs
// name the image, in either mode, and nothing for an image no policy
// governs (so its registry is not asked).
func TestImageAttestors(t *testing.T) {
	const key = `      - |
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE17L1CDixpC6Umq7sna4KFil3Hd2i
        Vwa/O2oifOFPIoRfQXLnmx0Zky5fhVSiU/lkeX+0ojts/CFlxIp7EYr+xw==
        -----END PUBLIC KEY-----
`
	att := func(name string) string {
		return "apiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: " + name + "}\nspec:\n  publicKeys:\n" + key + "---\n"
	}
	docs := att("ci") + att("qa") + att("vendor") + `apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: own}
spec:
  policy: {requiredAttestors: [ci]}
  clusters: [{clusterId: c1}]
  images: ["registry.example.com/*"]
---
apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: trial}
spec:
  policy: {requiredAttestors: [qa]}
  clusters: [{clusterId: c1, namespaces: [prod]}]
  images: ["registry.example.com/*"]
  mode: warn
---
apiVersion: imagegate.dev/v1alpha1
kind: BinarySecurityPolicy
metadata: {name: vendor}
spec:
  policy: {requiredAttestors: [vendor]}
  clusters: [{clusterId: c1}]
  images: [nginx]
  status: disabled
`
	objs, err := policy.Parse("p.yaml", []byte(docs))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.NewSnapshot(objs...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := rego.New(context.Background(), snap, rego.WithClusterID("c1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ns, image string
		want      []string
	}{
		{"prod", "registry.example.com/team/app:1", []string{"ci", "qa"}},
		{"dev", "registry.example.com/team/app:1", []string{"ci"}},
		{"prod", "nginx:1.25", nil},
		{"dev", "docker.io/library/busybox", nil},
	} {
		img := workload.ParseImage(tc.image)
		if got := e.ImageAttestors(tc.ns, img.Names); !slices.Equal(got, tc.want) {
			t.Errorf("%s in %s: %v, want %v", tc.image, tc.ns, got, tc.want)
		}
	}
	if got := e.RequiredAttestors("prod"); !slices.Equal(got, []string{"ci", "qa"}) {
		t.Errorf("RequiredAttestors(prod) = %v: the namespace's union, whatever the images", got)
	}
}
