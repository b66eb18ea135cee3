package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/restmapper"
)

// clientCAVolume is the Deployment's client-ca volume's Secret and key.
func clientCAVolume(d *unstructured.Unstructured) (secret, key string) {
	vols, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	for _, v := range vols {
		m := v.(map[string]any)
		if m["name"] != "client-ca" {
			continue
		}
		secret, _, _ = unstructured.NestedString(m, "secret", "secretName")
		items, _, _ := unstructured.NestedSlice(m, "secret", "items")
		if len(items) == 1 {
			key, _ = items[0].(map[string]any)["key"].(string)
		}
	}
	return secret, key
}

// TestDeployClientAuth: the chart (clientAuth.*) and the kustomize
// component client-auth mount the CA of the API server's client
// certificate and pass --client-ca-file (and --require-client-cert); off by
// default; every object passes the API server's dry run. Then a real
// kube-apiserver configured as docs/kubernetes.md says (an
// AdmissionConfiguration whose kubeconfig presents a client certificate)
// calls imagegate run with those flags: pods are decided, the audit events
// say authenticated, and a review sent without the certificate is refused.
func TestDeployClientAuth(t *testing.T) {
	cluster := harness.SharedCluster(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dyn := cluster.ApplyPolicies(t)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memCache(cluster.Client(t).Discovery()))
	const required = "--require-client-cert"
	const caFlag = "--client-ca-file=/etc/imagegate/client-ca/ca.crt"

	t.Run("helm", func(t *testing.T) {
		cases := []struct {
			name                string
			set                 []string
			args                []string // flags present; the others of caFlag, required absent
			secret, key         string
			clientCertificate   bool // the cert-manager Certificate for the API server
			validateWithTheAPIs bool
		}{
			{"default: off", nil, nil, "", "", false, true},
			{"own CA Secret", []string{"clientAuth.enabled=true", "clientAuth.caSecret=my-client-ca", "clientAuth.caKey=bundle.pem"},
				[]string{caFlag, required}, "my-client-ca", "bundle.pem", false, true},
			{"audit only", []string{"clientAuth.enabled=true", "clientAuth.caSecret=my-client-ca", "clientAuth.required=false"},
				[]string{caFlag}, "my-client-ca", "ca.crt", false, true},
			{"cert-manager", []string{"clientAuth.enabled=true", "clientAuth.certManager=true"},
				[]string{caFlag, required}, "imagegate-apiserver-client", "ca.crt", true, false},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				objs := helmTemplate(t, "imagegate-helm", append([]string{"clusterId=e2e-cluster"}, c.set...)...)
				d := find(objs, "Deployment", "imagegate")
				args := containerArgs(t, d)
				for _, f := range []string{caFlag, required} {
					if slices.Contains(args, f) != slices.Contains(c.args, f) {
						t.Errorf("args %q: %s present %v, want %v", args, f, slices.Contains(args, f), slices.Contains(c.args, f))
					}
				}
				if secret, key := clientCAVolume(d); secret != c.secret || key != c.key {
					t.Errorf("client-ca volume from Secret %q key %q; want %q %q", secret, key, c.secret, c.key)
				}
				if got := find(objs, "Certificate", "imagegate-apiserver-client") != nil; got != c.clientCertificate {
					t.Errorf("client Certificate rendered %v, want %v", got, c.clientCertificate)
				}
				if c.validateWithTheAPIs { // the cert-manager kinds are not installed
					dryRunApply(t, dyn, mapper, append([]*unstructured.Unstructured{harness.DecodeYAML(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: imagegate-helm}\n")}, objs...))
				}
			})
		}
		out, err := exec.Command(helmBinary(t), "template", "imagegate", filepath.Join(root, "deploy", "helm", "imagegate"),
			"--namespace", "imagegate-system", "--set", "clusterId=e2e-cluster", "--set", "clientAuth.enabled=true").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "clientAuth.enabled needs clientAuth.caSecret or clientAuth.certManager") {
			t.Errorf("clientAuth.enabled without a CA: %v %s", err, out)
		}
	})

	var kustomizeArgs []string
	t.Run("kustomize overlay", func(t *testing.T) {
		objs := renderKustomize(t, filepath.Join(root, "deploy", "kustomize", "overlays", "client-auth"))
		d := find(objs, "Deployment", "imagegate")
		kustomizeArgs = containerArgs(t, d)
		if !slices.Contains(kustomizeArgs, caFlag) || !slices.Contains(kustomizeArgs, required) {
			t.Errorf("args %q lack %s and %s", kustomizeArgs, caFlag, required)
		}
		if secret, key := clientCAVolume(d); secret != "imagegate-apiserver-client-ca" || key != "ca.crt" {
			t.Errorf("client-ca volume from Secret %q key %q", secret, key)
		}
		checkManifests(t, objs, "imagegate-system")
		dryRunApply(t, dyn, mapper, objs)
	})

	t.Run("a kube-apiserver presenting its client certificate", func(t *testing.T) {
		dir := t.TempDir()
		clientCA := harness.NewCA(t, "webhook-client")
		apiserverCert := clientCA.ClientCert(t, "apiserver-webhook-client", "kube-apiserver")
		listen := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
		// The documented configuration: the kubeconfig user is named after
		// the webhook's host (and port) and presents the certificate.
		kubeconfig := writeFile(t, dir, "webhook-kubeconfig.yaml", `apiVersion: v1
kind: Config
users:
- name: "`+listen+`"
  user:
    client-certificate: `+apiserverCert.CertFile+`
    client-key: `+apiserverCert.KeyFile+`
`)
		admission := writeFile(t, dir, "admission.yaml", `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ValidatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: `+kubeconfig+`
`)
		etcd := harness.StartEtcd(t)
		api := harness.StartAPIServer(t, etcd, "--admission-control-config-file="+admission)
		polDir := filepath.Join(dir, "policies")
		writeFile(t, polDir, "p.yaml", strategies)
		auditLog := filepath.Join(dir, "audit.jsonl")
		// The flags the overlay adds, with the CA at a local path.
		var flags []string
		for _, a := range kustomizeArgs {
			switch {
			case a == caFlag:
				flags = append(flags, "--client-ca-file="+clientCA.CertFile)
			case a == required:
				flags = append(flags, a)
			}
		}
		if len(flags) != 2 {
			t.Fatalf("overlay flags %q", kustomizeArgs)
		}
		ig := harness.RunImagegate(t, append([]string{"--policies", polDir, "--cluster-id", clusterID, "--facts", writeFile(t, dir, "facts.yaml", facts),
			"--audit-log", auditLog}, flags...), harness.ServeAt(listen))
		harness.RegisterWebhook(t, api.Config, ig.URL, ig.CAPEM)
		client := api.Client(t)
		ns := createNamespace(t, client, "clientauth")
		ctx := context.Background()
		_, err := client.CoreV1().Pods(ns).Create(ctx, pod("blocked", blockedImage, nil), metav1.CreateOptions{})
		mustDeny(t, "pod with "+blockedImage, err, blockedMsg)
		if _, err := client.CoreV1().Pods(ns).Create(ctx, pod("good", goodImage, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod with %s: %v", goodImage, err)
		}
		// A forged review, straight to the webhook without the certificate.
		review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"forged","kind":{"kind":"Pod"},"namespace":"` + ns +
			`","operation":"CREATE","userInfo":{"username":"system:admin"},"object":{"kind":"Pod","metadata":{"name":"f"},"spec":{"containers":[{"name":"c","image":"` + blockedImage + `"}]}}}}`
		resp, err := ig.HTTPClient().Post(ig.URL+"/validate?timeout=10s", "application/json", strings.NewReader(review))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("review without a client certificate: %d, want 401", resp.StatusCode)
		}
		// The blocked pod's event: sent by the API server, authenticated.
		harness.Eventually(t, 10*time.Second, "the audit event of the blocked pod", func() error {
			f, err := os.Open(auditLog)
			if err != nil {
				return err
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var ev struct {
					UID, Name, Namespace string
					Authenticated        *bool
					Client               string
				}
				if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Namespace != ns {
					continue
				}
				if ev.UID == "forged" {
					t.Errorf("the forged review was recorded: %s", sc.Text())
				}
				if ev.Name == "blocked" {
					if ev.Authenticated == nil || !*ev.Authenticated || ev.Client != "CN=kube-apiserver" {
						t.Errorf("event of the API server's review: %s", sc.Text())
					}
					return nil
				}
			}
			return os.ErrNotExist
		})
	})
}
