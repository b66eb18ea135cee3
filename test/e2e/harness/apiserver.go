package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// APIServer is a kube-apiserver on 127.0.0.1 backed by an Etcd.
type APIServer struct {
	*Process
	URL string
	// CA signs the serving certificate and the client certificates.
	CA *CA
	// Admin is a client certificate for user "e2e-admin" in system:masters.
	Admin *KeyPair
	// Kubeconfig is a kubeconfig file for Admin, for kubectl and the like.
	Kubeconfig string
	// Config is a client configuration for Admin. Copy it (rest.CopyConfig)
	// before changing it.
	Config *rest.Config
}

// StartAPIServer starts kube-apiserver against etcd on a free port of
// 127.0.0.1 with generated certificates, RBAC authorization and an admin
// identity (a client certificate in system:masters), waits until /readyz
// answers 200 and returns it.
//
// No controller-manager runs, so the default ServiceAccount of a namespace
// never appears: the ServiceAccount admission plugin is disabled, so that
// pods can be created without one. Nothing schedules or runs the pods.
// extra are further kube-apiserver flags (e.g. an audit policy).
func StartAPIServer(t TB, etcd *Etcd, extra ...string) *APIServer {
	t.Helper()
	bin := MustTool(t, EnvKubeAPIServer)
	dir := t.TempDir()
	ca := NewCA(t, "kube")
	serving := ca.ServingCert(t, "apiserver", nil, "kubernetes", "kubernetes.default", "kubernetes.default.svc")
	admin := ca.ClientCert(t, "admin", "e2e-admin", "system:masters")
	saKey, saPub := WriteKeyPair(t, ca.Dir, "service-account")
	certDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		t.Fatalf("cert dir: %v", err)
	}
	port := FreePort(t)
	url := "https://" + hostPort(port)
	args := []string{
		"--etcd-servers=" + etcd.ClientURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + certDir,
		"--tls-cert-file=" + serving.CertFile,
		"--tls-private-key-file=" + serving.KeyFile,
		"--client-ca-file=" + ca.CertFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saPub,
		"--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		// A loopback address cannot be an endpoint of the kubernetes
		// service; nothing in these tests needs that service.
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=1",
	}
	args = append(args, extra...)
	p := startProcess(t, "kube-apiserver", dir, bin, args, nil)

	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeKubeconfig(t, kubeconfig, ca.CertFile, kubeconfigOptions{server: url, certFile: admin.CertFile, keyFile: admin.KeyFile})
	cfg := &rest.Config{
		Host: url,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   ca.CertPEM,
			CertData: admin.CertPEM,
			KeyData:  admin.KeyPEM,
		},
		QPS:   100,
		Burst: 200,
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	start := time.Now()
	p.waitFor(t, 2*time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("GET /readyz: %v: %s", err, body)
		}
		return nil
	})
	t.Logf("kube-apiserver ready at %s after %s (log: %s)", url, time.Since(start).Round(100*time.Millisecond), p.LogPath)
	return &APIServer{Process: p, URL: url, CA: ca, Admin: admin, Kubeconfig: kubeconfig, Config: cfg}
}

// Client returns a clientset for the admin identity.
func (a *APIServer) Client(t TB) *kubernetes.Clientset {
	t.Helper()
	c, err := kubernetes.NewForConfig(rest.CopyConfig(a.Config))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return c
}
