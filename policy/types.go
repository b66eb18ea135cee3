package policy

// APIVersion is the group/version every policy object carries.
const APIVersion = "imagegate.dev/v1alpha1"

// Kinds of policy objects.
const (
	KindAttestor             = "Attestor"
	KindBinarySecurityPolicy = "BinarySecurityPolicy"
	KindOpaStrategy          = "OpaStrategy"
)

// Rule actions of an OpaStrategy, as Alibaba Cloud Security Center's OpaStrategy operations
// number them (files may also write the words: see wordFields).
const (
	ActionAlert = 1
	ActionBlock = 2
	ActionAllow = 3
)

// ObjectMeta is the part of Kubernetes metadata imagegate reads. Labels and
// annotations are accepted so the same files can be applied with kubectl.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// TypeMeta identifies an object's kind.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// Attestor is who may vouch for an image.
type Attestor struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta   `json:"metadata"`
	Spec     AttestorSpec `json:"spec"`
}

// AttestorSpec lists the keys or the keyless identity whose signatures count.
type AttestorSpec struct {
	Description string `json:"description,omitempty"`
	// PublicKeys are PEM public keys; a valid signature by any one satisfies the attestor.
	PublicKeys []string `json:"publicKeys,omitempty"`
	Keyless    *Keyless `json:"keyless,omitempty"`
	// TransparencyLog is required, optional (the default) or ignore.
	TransparencyLog string `json:"transparencyLog,omitempty"`
	// TrustedRoot is a Sigstore trusted root (trusted_root.json) given
	// inline: Fulcio CAs, Rekor logs, CT logs and timestamp authorities,
	// each with its validity window.
	TrustedRoot string `json:"trustedRoot,omitempty"`
	// TrustedRootFile is the path of a trusted_root.json (for example a
	// mounted ConfigMap), read when the attestor is first used.
	TrustedRootFile string `json:"trustedRootFile,omitempty"`
	// PublicSigstore trusts the public Sigstore instance (sigstore.dev)
	// through its TUF repository.
	PublicSigstore bool `json:"publicSigstore,omitempty"`
	// CTLog is required (the default for keyless signatures) or ignore: a
	// signing certificate must carry a verified Certificate Transparency
	// timestamp (SCT).
	CTLog string `json:"ctlog,omitempty"`
	// SignedTimestamps is required, optional (the default) or ignore: RFC 3161
	// timestamps from a trusted timestamp authority as the signing time.
	SignedTimestamps string `json:"signedTimestamps,omitempty"`
}

// Trust-material modes of an attestor.
const (
	ModeRequired = "required"
	ModeOptional = "optional"
	ModeIgnore   = "ignore"
)

// TLogMode is the attestor's transparencyLog mode with its default.
func (s *AttestorSpec) TLogMode() string { return orDefault(s.TransparencyLog, ModeOptional) }

// CTLogMode is the attestor's ctlog mode with its default.
func (s *AttestorSpec) CTLogMode() string { return orDefault(s.CTLog, ModeRequired) }

// TimestampMode is the attestor's signedTimestamps mode with its default.
func (s *AttestorSpec) TimestampMode() string { return orDefault(s.SignedTimestamps, ModeOptional) }

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// Keyless is a Fulcio certificate identity.
type Keyless struct {
	Issuer         string `json:"issuer,omitempty"`
	IssuerRegExp   string `json:"issuerRegExp,omitempty"`
	Subject        string `json:"subject,omitempty"`
	SubjectRegExp  string `json:"subjectRegExp,omitempty"`
	FulcioRoots    string `json:"fulcioRoots,omitempty"`
	RekorPublicKey string `json:"rekorPublicKey,omitempty"`
}

// BinarySecurityPolicy requires attestors' signatures in clusters and namespaces
// (Alibaba Cloud Security Center ModifyBinarySecurityPolicy).
type BinarySecurityPolicy struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta               `json:"metadata"`
	Spec     BinarySecurityPolicySpec `json:"spec"`
}

// BinarySecurityPolicySpec carries ModifyBinarySecurityPolicy's parameters,
// plus images and mode.
type BinarySecurityPolicySpec struct {
	Name     string          `json:"name,omitempty"`
	Remark   string          `json:"remark,omitempty"`
	Policy   SignaturePolicy `json:"policy"`
	Clusters []ClusterScope  `json:"clusters"`
	// Status is enabled (the default) or disabled.
	Status   string `json:"status,omitempty"`
	SourceIP string `json:"sourceIp,omitempty"`
	// Images limits the policy to images whose name matches one of these
	// globs (the name forms of OpaStrategy imageName), so that for example
	// third-party images can be left to another policy; empty means every
	// image.
	Images []string `json:"images,omitempty"`
	// Mode is enforce (the default: a missing signature denies) or warn (it
	// admits with a warning and an audit event naming the policy and the
	// attestor).
	Mode string `json:"mode,omitempty"`
}

// Modes of a BinarySecurityPolicy.
const (
	PolicyEnforce = "enforce"
	PolicyWarn    = "warn"
)

// Warn reports whether the policy only warns.
func (p *BinarySecurityPolicy) Warn() bool { return p.Spec.Mode == PolicyWarn }

// SignaturePolicy is ModifyBinarySecurityPolicy's Policy JSON.
type SignaturePolicy struct {
	PolicyMode        string   `json:"policyMode,omitempty"`
	RequiredAttestors []string `json:"requiredAttestors"`
}

// ClusterScope is one entry of ModifyBinarySecurityPolicy's Clusters.
type ClusterScope struct {
	ClusterID  string   `json:"clusterId"`
	Namespaces []string `json:"namespaces,omitempty"`
}

// Enabled reports whether the policy is in force.
func (p *BinarySecurityPolicy) Enabled() bool {
	return p.Spec.Status == "" || p.Spec.Status == StatusEnabled
}

// Policy statuses.
const (
	StatusEnabled  = "enabled"
	StatusDisabled = "disabled"
)

// PolicyModeRequireAttestor is the only policy mode.
const PolicyModeRequireAttestor = "requireAttestor"

// OpaStrategy is a rule over at-risk images (the Data object of
// Alibaba Cloud Security Center GetOpaStrategyDetailNew).
type OpaStrategy struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta      `json:"metadata"`
	Spec     OpaStrategySpec `json:"spec"`
}

// OpaStrategySpec carries every field of GetOpaStrategyDetailNew's Data object.
type OpaStrategySpec struct {
	StrategyID         int64       `json:"strategyId"`
	StrategyTemplateID int64       `json:"strategyTemplateId,omitempty"`
	StrategyName       string      `json:"strategyName,omitempty"`
	Description        string      `json:"description,omitempty"`
	ClusterID          string      `json:"clusterId,omitempty"`
	ClusterName        string      `json:"clusterName,omitempty"`
	UnScanedImage      bool        `json:"unScanedImage,omitempty"`
	MaliciousImage     bool        `json:"maliciousImage,omitempty"`
	ImageName          []string    `json:"imageName,omitempty"`
	Label              []string    `json:"label,omitempty"`
	RuleAction         int         `json:"ruleAction"`
	WhiteList          []string    `json:"whiteList,omitempty"`
	AlarmDetail        AlarmDetail `json:"alarmDetail,omitempty"`
	Scopes             []OpaScope  `json:"scopes,omitempty"`
	Lang               string      `json:"lang,omitempty"`
	CurrentPage        int         `json:"currentPage,omitempty"`
	PageSize           int         `json:"pageSize,omitempty"`
}

// AlarmDetail holds the finding criteria per category.
type AlarmDetail struct {
	Baseline      *RiskRule `json:"baseline,omitempty"`
	Vul           *VulRule  `json:"vul,omitempty"`
	MaliciousFile *RiskRule `json:"maliciousFile,omitempty"`
	SensitiveFile *RiskRule `json:"sensitiveFile,omitempty"`
	BuildRisk     *RiskRule `json:"buildRisk,omitempty"`
}

// RiskRule selects findings by level or by item id.
type RiskRule struct {
	RiskLevel []string `json:"riskLevel,omitempty"`
	Item      []Item   `json:"item,omitempty"`
}

// VulRule is a RiskRule that can also require a vulnerability class.
type VulRule struct {
	RiskLevel []string `json:"riskLevel,omitempty"`
	Item      []Item   `json:"item,omitempty"`
	RiskClass []Item   `json:"riskClass,omitempty"`
}

// Item names a check item, vulnerability, sample or class.
type Item struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// OpaScope is one entry of GetOpaStrategyDetailNew's Scopes.
type OpaScope struct {
	ClusterID           string   `json:"clusterId"`
	AllNamespace        int      `json:"allNamespace,omitempty"`
	NamespaceList       []string `json:"namespaceList,omitempty"`
	AckPolicyInstanceID string   `json:"ackPolicyInstanceId,omitempty"`
}

// Name is the strategy's display name: strategyName, else metadata.name.
func (s *OpaStrategy) Name() string {
	if s.Spec.StrategyName != "" {
		return s.Spec.StrategyName
	}
	return s.Metadata.Name
}
