package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestAPIServerWebhookMetrics: the alerts that watch imagegate from the API
// server's side select series the real kube-apiserver exposes. imagegate
// denies a pod, and two webhooks named like imagegate's but pointing at a
// closed port fail, one closed (failurePolicy Fail) and one open (Ignore);
// then every apiserver_* selector of deploy/prometheus/imagegate-rules.yaml
// must match a series of the API server's /metrics, and every label the
// expression groups by must be on it.
func TestAPIServerWebhookMetrics(t *testing.T) {
	g := startGate(t, strategies, facts)
	ctx := context.Background()
	pods := g.client.CoreV1().Pods(g.ns)
	_, err := pods.Create(ctx, pod("blocked", blockedImage, nil), metav1.CreateOptions{})
	mustDeny(t, "pod with "+blockedImage, err, blockedMsg)

	nonce := fmt.Sprint(time.Now().UnixNano())
	failing := registerUnreachableWebhooks(t, g.cluster.Client(t), nonce)
	for _, policy := range []admissionregistrationv1.FailurePolicyType{admissionregistrationv1.Fail, admissionregistrationv1.Ignore} {
		p := pod("unreachable-"+strings.ToLower(string(policy)), goodImage, map[string]string{failingLabel: nonce + "-" + string(policy)})
		harness.Eventually(t, 30*time.Second, "the "+string(policy)+" webhook to be called", func() error {
			_, err := pods.Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			switch {
			case policy == admissionregistrationv1.Fail && (err == nil || !strings.Contains(err.Error(), failing[policy])):
				return fmt.Errorf("not refused by %s: %v", failing[policy], err)
			case policy == admissionregistrationv1.Ignore && err != nil:
				return err
			}
			return nil
		})
	}

	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "imagegate-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	selectors := regexp.MustCompile(`(?m)(?:by \(([^)]*)\) \(rate\()?(apiserver_\w+)\{([^}]*)\}`).FindAllStringSubmatch(string(rules), -1)
	if len(selectors) < 2 {
		t.Fatalf("only %d apiserver_* selectors in the rules", len(selectors))
	}
	// Calls are counted when they end; the fail-open count may lag the
	// dry run by a moment.
	harness.Eventually(t, 30*time.Second, "every apiserver_* selector of the alerts to match", func() error {
		raw, err := g.cluster.Client(t).CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
		if err != nil {
			return err
		}
		samples := parseExposition(raw)
		for _, s := range selectors {
			if err := selectorMatches(samples, s[2], s[3], s[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

const failingLabel = "e2e.imagegate.dev/unreachable"

// registerUnreachableWebhooks registers webhooks named like imagegate's that
// call a closed port, for pods labelled failingLabel=<nonce>-<policy>: one
// failing closed, one failing open. It returns their names by policy.
func registerUnreachableWebhooks(t *testing.T, client kubernetes.Interface, nonce string) map[admissionregistrationv1.FailurePolicyType]string {
	t.Helper()
	names := map[admissionregistrationv1.FailurePolicyType]string{
		admissionregistrationv1.Fail:   "mutate.imagegate.dev",
		admissionregistrationv1.Ignore: "policies.imagegate.dev",
	}
	url := "https://127.0.0.1:1/validate"
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(2)
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "imagegate-e2e-unreachable-" + nonce}}
	for policy, name := range names {
		policy := policy
		vwc.Webhooks = append(vwc.Webhooks, admissionregistrationv1.ValidatingWebhook{
			Name: name, ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			FailurePolicy: &policy, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"},
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{failingLabel: nonce + "-" + string(policy)}},
		})
	}
	ctx := context.Background()
	if _, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), vwc.Name, metav1.DeleteOptions{})
	})
	return names
}

// sample is one line of the text exposition format.
type sample struct {
	name   string
	labels map[string]string
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

func parseExposition(raw []byte) []sample {
	var out []sample
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := sampleLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		s := sample{name: m[1], labels: map[string]string{}}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[p[1]] = p[2]
		}
		out = append(out, s)
	}
	return out
}

var matcher = regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"`)

// selectorMatches says whether some sample of name matches every matcher
// of the selector's text, and has every label of by (a by clause's list).
func selectorMatches(samples []sample, name, matchers, by string) error {
	ms := matcher.FindAllStringSubmatch(matchers, -1)
	found := false
	for _, s := range samples {
		if s.name != name {
			continue
		}
		found = true
		ok := true
		for _, m := range ms {
			v, has := s.labels[m[1]]
			re := regexp.MustCompile("^(?:" + m[3] + ")$")
			switch m[2] {
			case "=":
				ok = ok && v == m[3]
			case "!=":
				ok = ok && v != m[3]
			case "=~":
				ok = ok && has && re.MatchString(v)
			case "!~":
				ok = ok && !re.MatchString(v)
			}
		}
		for _, l := range strings.Split(by, ",") {
			if l = strings.TrimSpace(l); l != "" {
				_, has := s.labels[l]
				ok = ok && has
			}
		}
		if ok {
			return nil
		}
	}
	if !found {
		return fmt.Errorf("the API server exposes no %s", name)
	}
	return fmt.Errorf("no %s series matches {%s} with labels (%s)", name, matchers, by)
}
