package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/imagegate/imagegate/test/e2e/harness"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// policyCRs are the name, generation, labels and spec of every
// imagegate.dev object: what a refused change must leave as it was. Not
// the resourceVersion: the watcher's status writes change it at any time.
func policyCRs(t *testing.T, dyn dynamic.Interface) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, res := range []string{"attestors", "binarysecuritypolicies", "opastrategies"} {
		l, err := dyn.Resource(schema.GroupVersionResource{Group: "imagegate.dev", Version: "v1alpha1", Resource: res}).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range l.Items {
			spec, _ := json.Marshal(u.Object["spec"])
			out[res+"/"+u.GetName()] = fmt.Sprintf("generation %d labels %v spec %s", u.GetGeneration(), u.GetLabels(), spec)
		}
	}
	return out
}

// TestManagementAPIWritesCustomResources: with --policy-source=kube the
// management API writes the imagegate.dev custom resources on the real
// API server. A strategy created through the API is an OpaStrategy object
// and blocks the next pod; changes refused (an invalid value, a policy
// naming an unknown attestor) change no object; an update changes spec and
// keeps labels and the watcher's status; deleting the strategy
// through the API deletes the object and admits the image again.
func TestManagementAPIWritesCustomResources(t *testing.T) {
	cluster := harness.SharedCluster(t)
	ctx := context.Background()
	dyn := cluster.ApplyPolicies(t)
	strategies := dyn.Resource(harness.OpaStrategies)

	dir := t.TempDir()
	tokens := writeFile(t, dir, "tokens.csv", "admin-e2e,root,imagegate:admins\n")
	factsFile := writeFile(t, dir, "facts.yaml", facts)
	apiListen := net.JoinHostPort("127.0.0.1", strconv.Itoa(harness.FreePort(t)))
	// The API's strategy is the only one: deleting it empties the set,
	// which serve refuses unless told it is on purpose.
	ig := harness.StartImagegate(t, "--policy-source=kube", "--kubeconfig", cluster.Kubeconfig, "--cluster-id", clusterID, "--facts", factsFile,
		"--api-listen", apiListen, "--api-tokens", tokens, "--api-state", filepath.Join(dir, "iam.json"), "--allow-empty-policies")
	harness.RegisterWebhook(t, cluster.Config, ig.URL, ig.CAPEM)
	client := cluster.Client(t)
	pods := client.CoreV1().Pods(createNamespace(t, client, "apicr"))
	n := 0
	create := func() error {
		n++
		_, err := pods.Create(ctx, pod(fmt.Sprintf("apicr-%d", n), apiImage, nil), metav1.CreateOptions{})
		return err
	}
	api := managementAPI{client: ig.HTTPClient(), addr: apiListen}
	call := func(action string, kv ...string) (int, map[string]any) {
		t.Helper()
		return api.action(t, "admin-e2e", action, kv...)
	}
	if err := create(); err != nil {
		t.Fatalf("before any API change: %v", err)
	}

	start := time.Now()
	if st, body := call("ListOpaClusterStrategyNew"); st != 200 {
		t.Fatalf("list: %d %v", st, body)
	}
	t.Logf("MEASURED: ListOpaClusterStrategyNew (three lists from the API server) took %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	st, body := call("CreateOpaStrategyNew", "StrategyName", "apicr-block", "RuleAction", "2", "ClusterId", clusterID,
		"ImageName", `["api-app"]`, "Scopes", `[{"ClusterId":"`+clusterID+`","AllNamespace":1}]`)
	if st != 200 {
		t.Fatalf("create: %d %v", st, body)
	}
	// On a fresh API server the first create of a custom resource waits
	// about 2 s there (a plain client-go create does too; imagegate's own
	// list, validation and compile take ~25 ms); the delete below is the
	// steady-state number.
	t.Logf("MEASURED: CreateOpaStrategyNew (validate the set, compile, create the CR) took %s", time.Since(start).Round(time.Millisecond))
	created := time.Now()
	id := int64(body["Data"].(map[string]any)["StrategyId"].(float64))
	name := fmt.Sprintf("opastrategy-%d", id)
	t.Cleanup(func() { _ = strategies.Delete(context.Background(), name, metav1.DeleteOptions{}) })

	t.Run("the strategy is a custom resource", func(t *testing.T) {
		u, err := strategies.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("OpaStrategy %s: %v", name, err)
		}
		gotID, _, _ := unstructured.NestedInt64(u.Object, "spec", "strategyId")
		action, _, _ := unstructured.NestedInt64(u.Object, "spec", "ruleAction")
		images, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "imageName")
		if gotID != id || action != 2 || !reflect.DeepEqual(images, []string{"api-app"}) {
			t.Errorf("spec: strategyId %d ruleAction %d imageName %v; want %d, 2, [api-app]", gotID, action, images, id)
		}
	})

	want := fmt.Sprintf(`blocked by strategy %d "apicr-block"`, id)
	t.Run("the next pod is refused", func(t *testing.T) {
		var err error
		deadline := time.Now().Add(20 * time.Second)
		for err = create(); err == nil && time.Now().Before(deadline); err = create() {
			time.Sleep(50 * time.Millisecond)
		}
		mustDeny(t, "pod after the API created a block strategy", err, want, apiImage)
		t.Logf("MEASURED: first pod refused %s after the create call returned", time.Since(created).Round(time.Millisecond))
	})

	t.Run("an update changes spec and keeps labels and status", func(t *testing.T) {
		if _, err := strategies.Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"labels":{"team":"sec"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, name+" Accepted", func() (bool, error) {
			u, err := strategies.Get(ctx, name, metav1.GetOptions{})
			return err == nil && conditionStatus(u, "Accepted") == "True" && u.GetLabels()["team"] == "sec", err
		})
		if st, body := call("UpdateOpaStrategyNew", "StrategyId", strconv.FormatInt(id, 10), "ImageName", `["api-app","other-app"]`); st != 200 {
			t.Fatalf("update: %d %v", st, body)
		}
		u, err := strategies.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		images, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "imageName")
		if !reflect.DeepEqual(images, []string{"api-app", "other-app"}) || u.GetLabels()["team"] != "sec" || condition(u, "Accepted") == nil {
			t.Errorf("after the update: imageName %v labels %v status %v", images, u.GetLabels(), u.Object["status"])
		}
	})

	t.Run("refused changes change no object", func(t *testing.T) {
		tests := []struct {
			name, action string
			kv           []string
			status       int
			code         string
		}{
			{"invalid rule action", "UpdateOpaStrategyNew", []string{"StrategyId", strconv.FormatInt(id, 10), "RuleAction", "9"}, 400, "InvalidParameter.RuleAction"},
			{"policy naming an unknown attestor", "CreateBinarySecurityPolicy", []string{"Name", "apicr-policy",
				"Policy", `{"PolicyMode":"requireAttestor","RequiredAttestors":["apicr-nobody"]}`,
				"Clusters", `[{"ClusterId":"` + clusterID + `"}]`}, 400, "InvalidParameter.Policy"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := policyCRs(t, dyn)
				st, body := call(tc.action, tc.kv...)
				if st != tc.status || body["Code"] != tc.code {
					t.Errorf("%s: %d %v, want %d %s", tc.action, st, body, tc.status, tc.code)
				}
				if after := policyCRs(t, dyn); !reflect.DeepEqual(before, after) {
					t.Errorf("a refused change touched the custom resources: before %v after %v", before, after)
				}
			})
		}
		mustDeny(t, "pod after refused changes", create(), want)
	})

	t.Run("deleting through the API deletes the object and admits the pod", func(t *testing.T) {
		start := time.Now()
		if st, body := call("DeleteOpaStrategyNew", "StrategyId", strconv.FormatInt(id, 10)); st != 200 {
			t.Fatalf("delete: %d %v", st, body)
		}
		deleted := time.Now()
		t.Logf("MEASURED: DeleteOpaStrategyNew (validate the set, compile, delete the CR) took %s", deleted.Sub(start).Round(time.Millisecond))
		if _, err := strategies.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("OpaStrategy %s after the API deleted it: %v, want NotFound", name, err)
		}
		var err error
		deadline := time.Now().Add(20 * time.Second)
		for err = create(); err != nil && time.Now().Before(deadline); err = create() {
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("after the API deleted the strategy: %v", err)
		}
		t.Logf("MEASURED: first pod admitted %s after the delete call returned", time.Since(deleted).Round(time.Millisecond))
	})
}
