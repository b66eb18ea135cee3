package policy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/policy"
)

const pubKey = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE0hE5tEvNTDpqbSzsrMPZh+1Ks8cs
MQTuIpGj7xF6bECrD1J8qqWVBEE5uBTXz9ejKr9FKbV6bzE4SSvNIV2rKw==
-----END PUBLIC KEY-----`

func attestor(name string) string {
	return "apiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: " + name + "}\nspec:\n  publicKeys:\n  - |\n" +
		indent(pubKey, "    ") + "\n"
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}

const strategyHead = "apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {name: s1}\nspec:\n"

const policyHead = "apiVersion: imagegate.dev/v1alpha1\nkind: BinarySecurityPolicy\nmetadata: {name: p1}\nspec:\n"

func TestLoadValid(t *testing.T) {
	snap, err := policy.LoadDir("../examples/policies")
	if err != nil {
		t.Fatalf("examples must load: %v", err)
	}
	if len(snap.Attestors()) == 0 || len(snap.Policies()) == 0 || len(snap.Strategies()) < 3 {
		t.Fatalf("examples loaded %d attestors, %d policies, %d strategies", len(snap.Attestors()), len(snap.Policies()), len(snap.Strategies()))
	}
	s := snap.Strategies()[0]
	if s.Spec.StrategyID != 1005 || s.Spec.RuleAction != policy.ActionBlock || s.Spec.AlarmDetail.Vul == nil {
		t.Errorf("strategy 1005 decoded wrong: %+v", s.Spec)
	}
	if !strings.HasPrefix(snap.Digest(), "sha256:") {
		t.Errorf("digest %q", snap.Digest())
	}
}

func TestDocumentedStrategyLoads(t *testing.T) {
	// Every field of GetOpaStrategyDetailNew's documented Data object.
	doc := strategyHead + `  strategyId: 1005
  strategyTemplateId: 1204
  strategyName: test001
  description: Custom defense configuration
  clusterId: c8ca91e0907d94efaba7fb0827eb9
  clusterName: test
  unScanedImage: true
  maliciousImage: true
  imageName: [opa-test]
  label: ["app.kubernetes.io/instance:devops"]
  ruleAction: 1
  whiteList: [test-tag]
  alarmDetail:
    baseline:      {riskLevel: [low],    item: [{id: ak_leak, name: Access Key plaintext storage}]}
    vul:           {riskLevel: [medium], item: [{id: AVD-2023-1680169, name: ezOffice}], riskClass: [{id: cve, name: System vulnerability}]}
    maliciousFile: {riskLevel: [high],   item: [{id: "1811", name: abnormal binary file}]}
    sensitiveFile: {riskLevel: [low],    item: [{id: key, name: name}]}
    buildRisk:     {riskLevel: [high],   item: [{id: key, name: name}]}
  scopes:
  - clusterId: c1fdb5fd8d7163
    allNamespace: 1
    namespaceList: [namespace1]
    ackPolicyInstanceId: ack-0
  lang: zh
  currentPage: 4
  pageSize: 20
`
	objs, err := policy.Parse("s.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.NewSnapshot(objs...)
	if err != nil {
		t.Fatal(err)
	}
	s := snap.Strategies()[0].Spec
	if s.AlarmDetail.MaliciousFile.Item[0].ID != "1811" || s.Scopes[0].AckPolicyInstanceID != "ack-0" || s.PageSize != 20 {
		t.Errorf("decoded %+v", s)
	}
}

func TestValidationErrors(t *testing.T) {
	cases := []struct {
		name, doc string
		want      []string // substrings, each must appear
	}{
		{"malformed yaml", "kind: [", []string{"malformed YAML/JSON"}},
		{"unknown kind", "apiVersion: imagegate.dev/v1alpha1\nkind: Policy\nmetadata: {name: x}\n", []string{`kind: unknown kind "Policy"`}},
		{"wrong apiVersion", "apiVersion: v1\nkind: OpaStrategy\nmetadata: {name: x}\nspec: {strategyId: 1, ruleAction: 1}\n", []string{`apiVersion: expected "imagegate.dev/v1alpha1"`}},
		{"missing kind", "apiVersion: imagegate.dev/v1alpha1\nmetadata: {name: x}\n", []string{"kind: is required"}},
		{"unknown field", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  ruleActions: 2\n", []string{"spec.ruleActions: unknown field", "ruleAction"}},
		{"unknown nested field", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  alarmDetail: {vul: {riskLevl: [high]}}\n", []string{"spec.alarmDetail.vul.riskLevl: unknown field"}},
		{"wrong type int", strategyHead + "  strategyId: one\n  ruleAction: 1\n", []string{`spec.strategyId: expected an integer, got the string "one"`}},
		{"wrong type string", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  alarmDetail: {maliciousFile: {item: [{id: 1811}]}}\n", []string{`spec.alarmDetail.maliciousFile.item[0].id: expected a string, got the integer 1811 (quote it: "1811")`}},
		{"wrong type list", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  imageName: nginx\n", []string{"spec.imageName: expected a list"}},
		{"wrong type bool", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  unScanedImage: yes\n", []string{"spec.unScanedImage: expected true or false"}},
		{"ruleAction out of range", strategyHead + "  strategyId: 1\n  ruleAction: 4\n", []string{"spec.ruleAction: 4 is not one of alert, block, allow (or 1, 2, 3)"}},
		{"ruleAction missing", strategyHead + "  strategyId: 1\n", []string{"spec.ruleAction: 0 is not one of"}},
		{"riskLevel enum", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  alarmDetail: {vul: {riskLevel: [high, severe]}}\n", []string{`spec.alarmDetail.vul.riskLevel[1]: "severe" is not one of high, medium, low`}},
		{"riskClass enum", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  alarmDetail: {vul: {riskClass: [{id: kernel}]}}\n", []string{`spec.alarmDetail.vul.riskClass[0].id: "kernel" is not one of cve, app`}},
		{"item id required", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  alarmDetail: {baseline: {item: [{name: x}]}}\n", []string{"spec.alarmDetail.baseline.item[0].id: is required"}},
		{"allNamespace enum", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  scopes: [{clusterId: c, allNamespace: 2}]\n", []string{"spec.scopes[0].allNamespace: 2 is not one of true, false (or 1, 0)"}},
		{"scope cluster required", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  scopes: [{allNamespace: 1}]\n", []string{"spec.scopes[0].clusterId: is required"}},
		{"strategyId positive", strategyHead + "  strategyId: 0\n  ruleAction: 1\n", []string{"spec.strategyId: must be a positive integer"}},
		{"lang enum", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  lang: fr\n", []string{`spec.lang: "fr" is not one of zh, en`}},
		{"bad glob", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  imageName: [\"app[\"]\n", []string{"spec.imageName[0]: pattern", "unterminated"}},
		{"empty label", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  label: [\":x\"]\n", []string{"spec.label[0]"}},
		{"name too long", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  strategyName: " + strings.Repeat("n", 129) + "\n", []string{"spec.strategyName: is 129 characters long, at most 128 allowed"}},
		{"description too long", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  description: " + strings.Repeat("d", 1025) + "\n", []string{"spec.description: is 1025 characters long, at most 1024 allowed"}},
		{"metadata name required", "apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {}\nspec: {strategyId: 1, ruleAction: 1}\n", []string{"metadata.name: is required"}},
		{"duplicate strategyId", strategyHead + "  strategyId: 7\n  ruleAction: 1\n---\n" + strings.Replace(strategyHead, "s1", "s2", 1) + "  strategyId: 7\n  ruleAction: 2\n", []string{"spec.strategyId: 7 is already used by OpaStrategy s1"}},
		{"duplicate name", strategyHead + "  strategyId: 7\n  ruleAction: 1\n---\n" + strategyHead + "  strategyId: 8\n  ruleAction: 2\n", []string{`metadata.name: OpaStrategy "s1" is defined twice`}},
		{"duplicate field", strategyHead + "  strategyId: 7\n  strategyId: 8\n  ruleAction: 1\n", []string{"spec.strategyId: duplicate field"}},
		{"unknown attestor", policyHead + "  policy: {requiredAttestors: [ghost]}\n  clusters: [{clusterId: c1}]\n", []string{`spec.policy.requiredAttestors[0]: unknown attestor "ghost"`}},
		{"policy needs attestors", attestor("a") + "---\n" + policyHead + "  policy: {requiredAttestors: []}\n  clusters: [{clusterId: c1}]\n", []string{"spec.policy.requiredAttestors: needs at least one attestor"}},
		{"policy needs clusters", attestor("a") + "---\n" + policyHead + "  policy: {requiredAttestors: [a]}\n", []string{"spec.clusters: needs at least one cluster"}},
		{"policy cluster id", attestor("a") + "---\n" + policyHead + "  policy: {requiredAttestors: [a]}\n  clusters: [{namespaces: [default]}]\n", []string{"spec.clusters[0].clusterId: is required"}},
		{"policyMode enum", attestor("a") + "---\n" + policyHead + "  policy: {policyMode: allowAll, requiredAttestors: [a]}\n  clusters: [{clusterId: c1}]\n", []string{`spec.policy.policyMode: "allowAll" is not one of requireAttestor`}},
		{"status enum", attestor("a") + "---\n" + policyHead + "  policy: {requiredAttestors: [a]}\n  clusters: [{clusterId: c1}]\n  status: on\n", []string{`spec.status: "on" is not one of enabled, disabled`}},
		{"policy document too long", attestor("a") + "---\n" + policyHead + "  policy: {requiredAttestors: [a" + strings.Repeat(", a", 1400) + "]}\n  clusters: [{clusterId: c1}]\n", []string{"spec.policy: the policy document is", "at most 4096 allowed"}},
		{"attestor needs a key", "apiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: a}\nspec: {description: x}\n", []string{"spec: needs publicKeys or keyless"}},
		{"attestor bad key", "apiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: a}\nspec: {publicKeys: [nope]}\n", []string{"spec.publicKeys[0]: not a PEM public key"}},
		{"attestor tlog enum", strings.TrimSuffix(attestor("a"), "\n") + "\n  transparencyLog: sometimes\n", []string{`spec.transparencyLog: "sometimes" is not one of required, optional, ignore`}},
		{"tlog required needs a Rekor key", strings.TrimSuffix(attestor("a"), "\n") + "\n  transparencyLog: required\n", []string{"spec.transparencyLog: required needs a Rekor log key"}},
		{"ctlog enum", strings.TrimSuffix(attestor("a"), "\n") + "\n  ctlog: optional\n", []string{`spec.ctlog: "optional" is not one of required, ignore`}},
		{"one trust source", strings.TrimSuffix(attestor("a"), "\n") + "\n  publicSigstore: true\n  trustedRootFile: /etc/root.json\n", []string{"spec: set one source of trust material, not trustedRootFile and publicSigstore"}},
		{"trusted root must parse", strings.TrimSuffix(attestor("a"), "\n") + "\n  trustedRoot: '{\"mediaType\": 3}'\n", []string{"spec.trustedRoot: not a Sigstore trusted root"}},
		{"keyless needs trust material", "apiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: a}\nspec: {keyless: {issuer: x, subject: me}}\n", []string{"spec.keyless: needs trust material for certificates"}},
		{"keyless SCT needs CT keys", "apiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: a}\nspec: {keyless: {issuer: x, subject: me, fulcioRoots: x}}\n", []string{"spec.ctlog: required (the default for keyless) needs a CT log key"}},
		{"timestamps required need a TSA", strings.TrimSuffix(attestor("a"), "\n") + "\n  signedTimestamps: required\n", []string{"spec.signedTimestamps: required needs a timestamp authority"}},
		{"label with empty key", strategyHead + "  strategyId: 1\n  ruleAction: 1\n  label: [\"=x\"]\n", []string{`spec.label[0]: "=x": expected key:value, key=value or key`}},
		{"keyless needs issuer", "apiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: a}\nspec: {keyless: {subject: me}}\n", []string{"spec.keyless.issuer: issuer or issuerRegExp is required"}},
		{"keyless bad regexp", "apiVersion: imagegate.dev/v1alpha1\nkind: Attestor\nmetadata: {name: a}\nspec: {keyless: {issuer: x, subjectRegExp: \"(\"}}\n", []string{"spec.keyless.subjectRegExp: invalid regular expression"}},
		{"not an object", "- a\n- b\n", []string{"expected an object with apiVersion"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs, err := policy.Parse("bad.yaml", []byte(c.doc))
			if err == nil {
				_, err = policy.NewSnapshot(objs...)
			}
			if err == nil {
				t.Fatalf("loaded without error:\n%s", c.doc)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// An error names the file and the line, and an invalid file among valid ones
// loads nothing.
func TestLoadDirReportsFileAndLoadsNothing(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good.yaml", strategyHead+"  strategyId: 1\n  ruleAction: 1\n")
	write("nested/bad.yaml", strings.Replace(strategyHead, "s1", "s2", 1)+"  strategyId: 2\n  ruleAction: 9\n")
	write(".hidden/ignored.yaml", "not: [valid")
	write("notes.txt", "ignored")
	snap, err := policy.LoadDir(dir)
	if snap != nil || err == nil {
		t.Fatalf("got snapshot %v, err %v", snap, err)
	}
	want := filepath.Join(dir, "nested/bad.yaml") + ":6: OpaStrategy s2: spec.ruleAction: 9 is not one of"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\nwant it to contain %q", err, want)
	}
	if strings.Contains(err.Error(), "good.yaml") || strings.Contains(err.Error(), "ignored") {
		t.Errorf("error mentions files that are fine or skipped: %q", err)
	}
	write("nested/bad.yaml", strings.Replace(strategyHead, "s1", "s2", 1)+"  strategyId: 2\n  ruleAction: 2\n")
	snap, err = policy.LoadDir(dir)
	if err != nil || len(snap.Strategies()) != 2 {
		t.Fatalf("after the fix: %v, %v", snap, err)
	}
}

func TestEveryErrorIsReported(t *testing.T) {
	doc := strategyHead + "  strategyId: -1\n  ruleAction: 7\n  lang: xx\n"
	_, err := policy.Parse("f.yaml", []byte(doc))
	if err == nil {
		var objs []policy.Object
		objs, _ = policy.Parse("f.yaml", []byte(doc))
		_, err = policy.NewSnapshot(objs...)
	}
	errs, ok := err.(policy.Errors)
	if !ok || len(errs) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"v1.*", "v1.2.3", true},
		{"v1.*", "v11", false},
		{"v?", "v1", true},
		{"v?", "v10", false},
		{"team/*", "team/app/sub", true},
		{"[ab]pp", "app", true},
		{"[!ab]pp", "app", false},
		{"a.b", "axb", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	}
	for _, c := range cases {
		g, err := policy.CompileGlob(c.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Match(c.s); got != c.want {
			t.Errorf("%q.Match(%q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

// An object as `kubectl get -o yaml` prints it loads: the server's metadata
// and the status are accepted and ignored, but only there.
func TestReadBackFromCluster(t *testing.T) {
	readBack := "apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\n" +
		"metadata: {name: s1, uid: 7c1e, resourceVersion: \"42\", generation: 3, creationTimestamp: \"2026-01-01T00:00:00Z\", labels: {team: a}}\n" +
		"spec: {strategyId: 1, ruleAction: block, clusterId: c1}\nstatus: {accepted: true, anything: [1, 2]}\n"
	objs, err := policy.Parse("s.yaml", []byte(readBack))
	if err != nil || len(objs) != 1 {
		t.Fatalf("read-back object: %v (%d objects)", err, len(objs))
	}
	for name, doc := range map[string]string{
		"uid in spec":        strategyHead + "  strategyId: 1\n  ruleAction: 1\n  uid: x\n",
		"status in metadata": "apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {name: s1, status: x}\nspec: {strategyId: 1, ruleAction: 1}\n",
		"label not a string": "apiVersion: imagegate.dev/v1alpha1\nkind: OpaStrategy\nmetadata: {name: s1, labels: {a: [1]}}\nspec: {strategyId: 1, ruleAction: 1}\n",
	} {
		if _, err := policy.Parse("s.yaml", []byte(doc)); err == nil {
			t.Errorf("%s: loaded without error", name)
		}
	}
}
