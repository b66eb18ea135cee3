package kube

// field is what the CRD schema says about one Go struct field beyond its
// type: the description kubectl explain prints, and constraints the API
// server checks at apply time. Constraints here repeat what policy validation
// checks (the webhook checks them again with the same code), so a kubectl
// apply fails early with the API server's field path.
type field struct {
	desc      string
	enum      []any
	def       any
	maxLength int
	minimum   *int64
	minItems  int
	// scalar replaces the Go type in the schema for the numeric fields that
	// also take words (policy's wordFields): intOrString or intOrBool.
	scalar string
}

// Schemas of fields that take a number or a word.
const (
	intOrString = "int-or-string" // x-kubernetes-int-or-string
	intOrBool   = "int-or-bool"   // no such OpenAPI type: any scalar, then the enum
)

func minimum(v int64) *int64 { return &v }

// fields documents every field of the policy types, keyed by Go type and
// field name. A test checks that every field reachable from the three kinds
// has an entry and that no entry is stale.
func fields() map[string]field {
	levels := []any{"high", "medium", "low"}
	return map[string]field{
		// Attestor
		"AttestorSpec.Description": {desc: "Free text shown to admins.", maxLength: 1024},
		"AttestorSpec.PublicKeys": {desc: "PEM public keys (-----BEGIN PUBLIC KEY-----; ECDSA, RSA or Ed25519). " +
			"A valid cosign signature by any one of them satisfies this attestor. publicKeys or keyless is required."},
		"AttestorSpec.Keyless": {desc: "Keyless (Fulcio certificate) identity whose signatures satisfy this attestor, " +
			"as an alternative or addition to publicKeys."},
		"AttestorSpec.TransparencyLog": {desc: "Rekor transparency log use: required (every signature must carry a log entry " +
			"that verifies offline against the trusted Rekor logs), optional (verified when the signature carries one and a " +
			"Rekor key is trusted) or ignore.",
			enum: []any{"required", "optional", "ignore"}, def: "optional"},
		"AttestorSpec.TrustedRoot": {desc: "A Sigstore trusted root (trusted_root.json) inline: Fulcio certificate authorities, " +
			"Rekor logs, CT logs and timestamp authorities with their validity windows. One of trustedRoot, trustedRootFile, " +
			"publicSigstore or keyless.fulcioRoots/rekorPublicKey."},
		"AttestorSpec.TrustedRootFile": {desc: "Absolute path of a trusted_root.json (for example a mounted ConfigMap)."},
		"AttestorSpec.PublicSigstore": {desc: "Trust the public Sigstore instance (fulcio.sigstore.dev, rekor.sigstore.dev) " +
			"through its TUF repository, with the embedded root and an on-disk cache."},
		"AttestorSpec.CTLog": {desc: "Certificate Transparency: required (a keyless signing certificate must carry an SCT " +
			"that verifies against a trusted CT log) or ignore.", enum: []any{"required", "ignore"}, def: "required"},
		"AttestorSpec.SignedTimestamps": {desc: "RFC 3161 signed timestamps: required (every signature must carry one from " +
			"a trusted timestamp authority), optional (used as the signing time when present and a TSA is trusted) or ignore.",
			enum: []any{"required", "optional", "ignore"}, def: "optional"},
		"Keyless.Issuer":         {desc: "OIDC issuer the Fulcio certificate must name exactly. Set issuer or issuerRegExp."},
		"Keyless.IssuerRegExp":   {desc: "Regular expression (RE2) the certificate's OIDC issuer must match."},
		"Keyless.Subject":        {desc: "Certificate subject (SAN: e-mail or URI) required exactly. Set subject or subjectRegExp."},
		"Keyless.SubjectRegExp":  {desc: "Regular expression (RE2) the certificate subject must match."},
		"Keyless.FulcioRoots":    {desc: "PEM root certificates the signing certificate must chain to."},
		"Keyless.RekorPublicKey": {desc: "PEM public key of the Rekor log, to verify bundles offline."},

		// BinarySecurityPolicy
		"BinarySecurityPolicySpec.Name":     {desc: "Display name (the Name parameter of ModifyBinarySecurityPolicy); metadata.name is the identity.", maxLength: 128},
		"BinarySecurityPolicySpec.Remark":   {desc: "Free text (Remark).", maxLength: 1024},
		"BinarySecurityPolicySpec.Policy":   {desc: "The signature requirement (the Policy document of ModifyBinarySecurityPolicy)."},
		"BinarySecurityPolicySpec.Clusters": {desc: "Clusters and namespaces the policy applies in (Clusters).", minItems: 1},
		"BinarySecurityPolicySpec.Status": {desc: "enabled puts the policy in force; disabled keeps it without effect.",
			enum: []any{"enabled", "disabled"}, def: "enabled"},
		"BinarySecurityPolicySpec.SourceIP": {desc: "Address the change came from (SourceIp); informational."},
		"BinarySecurityPolicySpec.Images": {desc: "Globs over image names (the forms OpaStrategy imageName matches: the " +
			"repository's last path segment, the repository path or the full name; * also crosses /). The policy applies " +
			"only to images matching one, for example to leave third-party images to another policy; empty means every image."},
		"BinarySecurityPolicySpec.Mode": {desc: "enforce: an image missing a required attestor's signature is denied. " +
			"warn: it is admitted with a warning and an audit event naming the policy and the attestor. When an enforce " +
			"and a warn policy require the same attestor of an image, enforce wins.",
			enum: []any{"enforce", "warn"}, def: "enforce"},
		"SignaturePolicy.PolicyMode": {desc: "How attestors are required; requireAttestor is the only mode.",
			enum: []any{"requireAttestor"}, def: "requireAttestor"},
		"SignaturePolicy.RequiredAttestors": {desc: "Names of Attestor objects; every image must be signed by ALL of them.", minItems: 1},
		"ClusterScope.ClusterID":            {desc: "Cluster id, as imagegate serve --cluster-id names it."},
		"ClusterScope.Namespaces":           {desc: "Namespaces of that cluster; empty or [\"*\"] means every namespace."},

		// OpaStrategy
		"OpaStrategySpec.StrategyID":         {desc: "Strategy id, unique across OpaStrategy objects; messages name it.", minimum: minimum(1)},
		"OpaStrategySpec.StrategyTemplateID": {desc: "Template the strategy was made from (StrategyTemplateId); informational.", minimum: minimum(0)},
		"OpaStrategySpec.StrategyName":       {desc: "Display name; defaults to metadata.name in messages.", maxLength: 128},
		"OpaStrategySpec.Description":        {desc: "Free text.", maxLength: 1024},
		"OpaStrategySpec.ClusterID":          {desc: "Cluster the strategy applies to when it has no scopes (then in every namespace)."},
		"OpaStrategySpec.ClusterName":        {desc: "Display name of clusterId; informational.", maxLength: 128},
		"OpaStrategySpec.UnScanedImage":      {desc: "Hit images that have no scan result (or only one older than --max-scan-age)."},
		"OpaStrategySpec.MaliciousImage":     {desc: "Hit images a scan marks malicious or that have a MaliciousFile finding."},
		"OpaStrategySpec.ImageName": {desc: "Target only images whose repository's last path segment, repository path or " +
			"full name matches one of these globs; empty targets every image."},
		"OpaStrategySpec.Label": {desc: "Target only pods carrying one of these labels (key:value, key=value, or key " +
			"for presence); empty targets every pod."},
		"OpaStrategySpec.RuleAction": {desc: "What a hit does: alert (admit with a warning), block (deny) or " +
			"allow (cancels block and alert of other strategies, never the signature gate). The numbers 1 (alert), " +
			"2 (block) and 3 (allow) of the management API are accepted too.",
			enum: []any{"alert", "block", "allow", 1, 2, 3}, scalar: intOrString},
		"OpaStrategySpec.WhiteList":   {desc: "Tag globs exempt from this strategy."},
		"OpaStrategySpec.AlarmDetail": {desc: "Finding criteria per scan category; a finding hits when its level is in riskLevel or its id in item."},
		"OpaStrategySpec.Scopes":      {desc: "Clusters and namespaces the strategy applies in; empty means clusterId with every namespace."},
		"OpaStrategySpec.Lang":        {desc: "Language of the management API request (Lang); informational.", enum: []any{"zh", "en"}},
		"OpaStrategySpec.CurrentPage": {desc: "Paging field of GetOpaStrategyDetailNew, kept so its objects map one to one; informational.",
			minimum: minimum(0)},
		"OpaStrategySpec.PageSize": {desc: "Paging field of GetOpaStrategyDetailNew, kept so its objects map one to one; informational.",
			minimum: minimum(0)},
		"AlarmDetail.Baseline":      {desc: "Baseline (configuration check) findings that hit."},
		"AlarmDetail.Vul":           {desc: "Vulnerability findings that hit."},
		"AlarmDetail.MaliciousFile": {desc: "Malicious file findings that hit."},
		"AlarmDetail.SensitiveFile": {desc: "Sensitive file findings (secrets, keys) that hit."},
		"AlarmDetail.BuildRisk":     {desc: "Build risk (image configuration) findings that hit."},
		"RiskRule.RiskLevel":        {desc: "Finding levels that hit: high, medium or low.", enum: levels},
		"RiskRule.Item":             {desc: "Finding ids that hit, whatever their level."},
		"VulRule.RiskLevel":         {desc: "Vulnerability levels that hit: high, medium or low.", enum: levels},
		"VulRule.Item":              {desc: "Vulnerability ids (e.g. CVE ids) that hit, whatever their level."},
		"VulRule.RiskClass":         {desc: "When non-empty, a vulnerability hits only if its class is listed: cve (OS packages) or app (language packages)."},
		"Item.ID":                   {desc: "The id: check item, vulnerability id, sample id or class (cve, app in riskClass)."},
		"Item.Name":                 {desc: "Display name; informational."},
		"OpaScope.ClusterID":        {desc: "Cluster id, as imagegate serve --cluster-id names it."},
		"OpaScope.AllNamespace": {desc: "true: every namespace of the cluster; false (the default): only namespaceList. " +
			"The numbers 1 (true) and 0 (false) of the management API are accepted too.",
			enum: []any{true, false, 1, 0}, scalar: intOrBool},
		"OpaScope.NamespaceList":       {desc: "Namespaces the strategy applies in when allNamespace is 0."},
		"OpaScope.AckPolicyInstanceID": {desc: "AckPolicyInstanceId of the scope; informational."},
	}
}
