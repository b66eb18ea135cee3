package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
)

// Names of the environment variables naming sigstore policy-controller's
// webhook binary and its config/ directory (scripts/peer-tools.sh).
const (
	EnvPolicyController       = "POLICY_CONTROLLER"
	EnvPolicyControllerConfig = "POLICY_CONTROLLER_CONFIG"
)

// PolicyControllerNamespace is where policy-controller keeps its
// ConfigMaps, serving certificate and leases (its SYSTEM_NAMESPACE), and
// where the Service the API server calls it through lives.
const PolicyControllerNamespace = "cosign-system"

// PolicyControllerInclude is the namespace label policy-controller's
// webhooks select (value "true").
const PolicyControllerInclude = "policy.sigstore.dev/include"

// PolicyController is sigstore policy-controller's webhook run as a
// process against a Cluster.
type PolicyController struct {
	*Process
	// Addr is the host:port it serves on, the endpoint of its Service.
	Addr string
}

// HostAddress returns an IPv4 address of this machine that is not
// loopback: the API server reaches a Service-backed webhook through the
// Service's endpoints, and the API refuses loopback endpoint addresses.
func HostAddress() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ip := ipn.IP.To4(); ip != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
			return ip.String(), nil
		}
	}
	return "", errors.New("no non-loopback IPv4 address on this machine")
}

// StartPolicyController installs policy-controller's config/ into c (its
// CRDs, ConfigMaps, serving-certificate Secret and webhook configurations,
// as its release does), points its Service "webhook" at a free port of
// this machine's non-loopback address, runs cmd/webhook out of cluster
// with c's admin kubeconfig and without TUF (no network here), and waits
// until its validating webhook answers through the API server.
//
// The API server must run with --enable-aggregator-routing: there is no
// kube-proxy, so a Service is reachable only by its endpoints.
func StartPolicyController(t TB, c *Cluster) *PolicyController {
	t.Helper()
	bin := MustToolEnv(t, EnvPolicyController, "scripts/peer-tools.sh")
	config := MustToolEnv(t, EnvPolicyControllerConfig, "scripts/peer-tools.sh")
	host, err := HostAddress()
	if err != nil {
		t.Fatalf("policy-controller: %v", err)
	}
	client := c.Client(t)
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: PolicyControllerNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("namespace %s: %v", PolicyControllerNamespace, err)
	}
	// Its webhook server listens on :8443 whatever --secure-port says (the
	// flag is read after the options were stored), so that port must be free.
	port := policyControllerPort
	if l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(port))); err != nil {
		t.Fatalf("policy-controller serves on port %d, which is taken: %v", port, err)
	} else {
		l.Close()
	}
	applyPolicyControllerConfig(t, c, config)
	exposeService(t, client, PolicyControllerNamespace, "webhook", host, port)

	dir := t.TempDir()
	env := append([]string{
		"SYSTEM_NAMESPACE=" + PolicyControllerNamespace,
		"CONFIG_LOGGING_NAME=config-logging",
		"METRICS_DOMAIN=sigstore.dev/policy",
		"WEBHOOK_NAME=webhook",
		"KUBERNETES_MIN_VERSION=1.21.0",
		"POD_NAME=policy-controller-0",
		"HOME=" + dir,
		// Its first flag.Parse runs before knative defines --kubeconfig.
		"KUBECONFIG=" + c.Kubeconfig,
		"METRICS_PROMETHEUS_PORT=" + strconv.Itoa(FreePort(t)),
		"PROFILING_PORT=" + strconv.Itoa(FreePort(t)),
	}, offlineEnv...)
	args := []string{"--disable-tuf"}
	p := startProcess(t, "policy-controller", dir, bin, args, env)
	pc := &PolicyController{Process: p, Addr: net.JoinHostPort(host, strconv.Itoa(port))}

	// Ready when its validating webhook refuses, through the API server, a
	// pod by tag in a namespace that opted in: that needs the serving
	// certificate made, the webhook configuration patched with its CA and
	// rules, and the API server able to reach it.
	probeNS := "policy-controller-probe"
	_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: probeNS, Labels: map[string]string{PolicyControllerInclude: "true"}}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("namespace %s: %v", probeNS, err)
	}
	start := time.Now()
	p.waitFor(t, 3*time.Minute, func() error {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "127.0.0.1:9/probe:latest"}}},
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := client.CoreV1().Pods(probeNS).Create(cctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), "must be an image digest") {
			return nil
		}
		return fmt.Errorf("probe pod by tag: %v (want a refusal naming a digest)", err)
	})
	t.Logf("policy-controller ready at %s after %s (log: %s)", pc.Addr, time.Since(start).Round(100*time.Millisecond), p.LogPath)
	return pc
}

// MustToolEnv returns the value of the environment variable env, or fails
// the test naming the script that provides it.
func MustToolEnv(t TB, env, script string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		t.Fatalf("%s is not set: run %s and source the env file it writes", env, script)
	}
	if _, err := os.Stat(v); err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	return v
}

// policyControllerPort is the port policy-controller's webhook serves on.
const policyControllerPort = 8443

// skippedKinds are the documents of policy-controller's config/ that an
// out-of-cluster run replaces: the Deployment (the process here), the
// Service (one without selector, see exposeService) and the Namespace.
var skippedKinds = map[string]bool{"Deployment": true, "Service": true, "Namespace": true}

// applyPolicyControllerConfig creates every object of the YAML files in
// dir but skippedKinds, CRDs first (waiting until they are established).
func applyPolicyControllerConfig(t TB, c *Cluster, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	sort.Strings(files)
	var crds, rest []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" { // kustomize's own, not an object
			continue
		}
		for _, obj := range readObjects(t, f) {
			switch {
			case skippedKinds[obj.GetKind()]:
			case obj.GetKind() == "CustomResourceDefinition":
				crds = append(crds, obj)
			default:
				rest = append(rest, obj)
			}
		}
	}
	if len(crds) == 0 {
		t.Fatalf("%s holds no CustomResourceDefinition: not policy-controller's config/", dir)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	ctx := context.Background()
	for _, crd := range crds {
		if _, err := dyn.Resource(CRDs).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create CRD %s: %v", crd.GetName(), err)
		}
		Eventually(t, 30*time.Second, "CRD "+crd.GetName()+" established", func() error {
			got, err := dyn.Resource(CRDs).Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !established(got) {
				return errors.New("not Established yet")
			}
			return nil
		})
	}
	disc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	groups, err := restmapper.GetAPIGroupResources(disc)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	for _, obj := range rest {
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", gvk, obj.GetName(), err)
		}
		var res dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := obj.GetNamespace()
			if ns == "" {
				ns = PolicyControllerNamespace
			}
			res = dyn.Resource(m.Resource).Namespace(ns)
		}
		if _, err := res.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %s %s: %v", gvk.Kind, obj.GetName(), err)
		}
	}
}

// readObjects decodes the YAML documents of file, skipping empty ones.
func readObjects(t TB, file string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v", err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj := DecodeYAML(t, string(doc))
		if obj.GetKind() == "" {
			continue
		}
		out = append(out, obj)
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// exposeService creates Service namespace/name (port 443, no selector)
// with an Endpoints and an EndpointSlice naming host:port, so that the API
// server, routing to endpoints, calls a process running on this machine.
func exposeService(t TB, client kubernetes.Interface, namespace, name, host string, port int) {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "https", Port: 443, TargetPort: intstr.FromInt32(int32(port)), Protocol: corev1.ProtocolTCP,
		}}},
	}
	if _, err := client.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create Service %s/%s: %v", namespace, name, err)
	}
	//nolint:staticcheck // the API server's endpoint routing may read Endpoints or EndpointSlices; both are written.
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: host}},
			Ports:     []corev1.EndpointPort{{Name: "https", Port: int32(port), Protocol: corev1.ProtocolTCP}},
		}},
	}
	if _, err := client.CoreV1().Endpoints(namespace).Create(ctx, ep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create Endpoints %s/%s: %v", namespace, name, err)
	}
	ready, portName, proto, p := true, "https", corev1.ProtocolTCP, int32(port)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-peer", Namespace: namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "imagegate-e2e",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &p, Protocol: &proto}},
	}
	if _, err := client.DiscoveryV1().EndpointSlices(namespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create EndpointSlice %s/%s: %v", namespace, name, err)
	}
}
