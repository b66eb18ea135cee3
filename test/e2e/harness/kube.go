package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// The resources the kube policy source reads, and the CRDs defining them.
var (
	CRDs                   = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	OpaStrategies          = schema.GroupVersionResource{Group: "imagegate.dev", Version: "v1alpha1", Resource: "opastrategies"}
	BinarySecurityPolicies = schema.GroupVersionResource{Group: "imagegate.dev", Version: "v1alpha1", Resource: "binarysecuritypolicies"}
	Attestors              = schema.GroupVersionResource{Group: "imagegate.dev", Version: "v1alpha1", Resource: "attestors"}
)

// policyResources maps the kinds ApplyPolicies accepts to their resources.
// Only cluster-scoped imagegate.dev kinds: their cleanup needs no namespace.
var policyResources = map[string]schema.GroupVersionResource{
	"OpaStrategy":          OpaStrategies,
	"BinarySecurityPolicy": BinarySecurityPolicies,
	"Attestor":             Attestors,
}

// DecodeYAML decodes one YAML document into an object.
func DecodeYAML(t TB, doc string) *unstructured.Unstructured {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("YAML: %v\n%s", err, doc)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		t.Fatalf("object: %v\n%s", err, doc)
	}
	return u
}

// ApplyCRDs creates (or replaces) the committed CRDs of deploy/crds named
// imagegate.dev_*.yaml and waits until the API server serves them.
func ApplyCRDs(t TB, dyn dynamic.Interface) {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("%v", err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "deploy", "crds", "imagegate.dev_*.yaml"))
	if len(files) != 3 {
		t.Fatalf("deploy/crds has %d imagegate.dev CRDs, want 3", len(files))
	}
	ctx := context.Background()
	crds := dyn.Resource(CRDs)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("%v", err)
		}
		crd := DecodeYAML(t, string(data))
		if old, err := crds.Get(ctx, crd.GetName(), metav1.GetOptions{}); err == nil {
			crd.SetResourceVersion(old.GetResourceVersion())
			if _, err := crds.Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("update CRD %s: %v", crd.GetName(), err)
			}
		} else if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create CRD %s from %s: %v", crd.GetName(), f, err)
		}
		Eventually(t, 30*time.Second, "CRD "+crd.GetName()+" established", func() error {
			got, err := crds.Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !established(got) {
				return fmt.Errorf("not Established yet")
			}
			return nil
		})
	}
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Established" {
			return m["status"] == "True"
		}
	}
	return false
}

// ApplyPolicies applies the imagegate.dev CRDs (ApplyCRDs) to the API
// server and creates the policy objects of docs, each one YAML document of
// kind OpaStrategy, BinarySecurityPolicy or Attestor, in order. An object
// of the same name left by an earlier test is deleted first, since a test
// that failed half-way may not have cleaned up; a cleanup deletes them all.
// It returns a dynamic client for the admin identity.
func (a *APIServer) ApplyPolicies(t TB, docs ...string) dynamic.Interface {
	t.Helper()
	dyn, err := dynamic.NewForConfig(a.Config)
	if err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	ApplyCRDs(t, dyn)
	ctx := context.Background()
	for _, doc := range docs {
		obj := DecodeYAML(t, doc)
		gvr, ok := policyResources[obj.GetKind()]
		if !ok {
			t.Fatalf("ApplyPolicies: kind %q of %q is none of OpaStrategy, BinarySecurityPolicy, Attestor", obj.GetKind(), obj.GetName())
		}
		res, name := dyn.Resource(gvr), obj.GetName()
		_ = res.Delete(ctx, name, metav1.DeleteOptions{})
		if _, err := res.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s %s: %v", obj.GetKind(), name, err)
		}
		t.Cleanup(func() { _ = res.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
	return dyn
}

// WriteKubeconfig writes a kubeconfig for the API server to a new file and
// returns its path: by default for the admin identity at a.URL, like
// a.Kubeconfig (see the KubeconfigOption functions for others).
func (a *APIServer) WriteKubeconfig(t TB, opts ...KubeconfigOption) string {
	t.Helper()
	o := kubeconfigOptions{server: a.URL, certFile: a.Admin.CertFile, keyFile: a.Admin.KeyFile}
	for _, opt := range opts {
		opt(&o)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, path, a.CA.CertFile, o)
	return path
}

// KubeconfigOption changes what WriteKubeconfig writes.
type KubeconfigOption func(*kubeconfigOptions)

type kubeconfigOptions struct {
	server            string
	certFile, keyFile string
	token             string
}

// KubeconfigServer names another server URL (e.g. a proxy in front of the
// API server); the API server's CA still verifies it.
func KubeconfigServer(url string) KubeconfigOption {
	return func(o *kubeconfigOptions) { o.server = url }
}

// KubeconfigToken authenticates with a bearer token (e.g. a
// ServiceAccount's) instead of the admin client certificate.
func KubeconfigToken(token string) KubeconfigOption {
	return func(o *kubeconfigOptions) { o.token, o.certFile, o.keyFile = token, "", "" }
}

// writeKubeconfig writes the one-cluster, one-user kubeconfig of o.
func writeKubeconfig(t TB, path, caFile string, o kubeconfigOptions) {
	t.Helper()
	user := fmt.Sprintf("{client-certificate: %q, client-key: %q}", o.certFile, o.keyFile)
	if o.token != "" {
		user = fmt.Sprintf("{token: %q}", o.token)
	}
	cfg := fmt.Sprintf(kubeconfigTemplate, o.server, caFile, user)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
}

const kubeconfigTemplate = `apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority: %q}
users:
- name: e2e-user
  user: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: e2e-user}
current-context: e2e
`

// Eventually polls cond every 100 ms until it returns nil, failing the test
// with its last error after timeout.
func Eventually(t TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, strings.TrimSpace(err.Error()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
