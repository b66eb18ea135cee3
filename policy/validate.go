package policy

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// Limits the cloud APIs imagegate reproduces document.
const (
	MaxNameLen        = 128
	MaxDescriptionLen = 1024
	MaxDocumentLen    = 4096
)

var (
	riskLevels  = []string{"high", "medium", "low"}
	riskClasses = []string{"cve", "app"}
	tlogModes   = []string{"required", "optional", "ignore"}
	langs       = []string{"zh", "en"}
)

// problems collects (path, message) pairs for one object.
type problems []struct{ path, msg string }

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, struct{ path, msg string }{path, fmt.Sprintf(format, args...)})
}

func (p *problems) length(path, v string, min, max int) {
	switch n := len([]rune(v)); {
	case n < min:
		p.add(path, "is required (%d–%d characters)", min, max)
	case n > max:
		p.add(path, "is %d characters long, at most %d allowed", n, max)
	}
}

func (p *problems) enum(path, v string, allowed []string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	p.add(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
}

func (p *problems) nonEmpty(path string, vs []string) {
	for i, v := range vs {
		if strings.TrimSpace(v) == "" {
			p.add(fmt.Sprintf("%s[%d]", path, i), "must not be empty")
		}
	}
}

func (p *problems) globs(path string, vs []string) {
	for i, v := range vs {
		if _, err := CompileGlob(v); err != nil {
			p.add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}

func validateMeta(m ObjectMeta, p *problems) {
	p.length("metadata.name", m.Name, 1, MaxNameLen)
	if strings.ContainsAny(m.Name, " /\t\n") {
		p.add("metadata.name", "%q must not contain spaces or slashes", m.Name)
	}
}

func (a *Attestor) validate(p *problems) {
	validateMeta(a.Metadata, p)
	s := a.Spec
	p.length("spec.description", s.Description, 0, MaxDescriptionLen)
	if len(s.PublicKeys) == 0 && s.Keyless == nil {
		p.add("spec", "needs publicKeys or keyless")
	}
	for i, k := range s.PublicKeys {
		if err := checkPublicKey(k); err != nil {
			p.add(fmt.Sprintf("spec.publicKeys[%d]", i), "%v", err)
		}
	}
	if s.TransparencyLog != "" {
		p.enum("spec.transparencyLog", s.TransparencyLog, tlogModes)
	}
	if s.CTLog != "" {
		p.enum("spec.ctlog", s.CTLog, []string{ModeRequired, ModeIgnore})
	}
	if s.SignedTimestamps != "" {
		p.enum("spec.signedTimestamps", s.SignedTimestamps, tlogModes)
	}
	if k := s.Keyless; k != nil {
		validateKeyless(k, p)
	}
	validateTrust(&s, p)
}

// validateTrust checks that at most one source of Sigstore trust material is
// named, and that the modes that need material have it.
func validateTrust(s *AttestorSpec, p *problems) {
	var sources []string
	legacy := s.Keyless != nil && (s.Keyless.FulcioRoots != "" || s.Keyless.RekorPublicKey != "")
	for _, src := range []struct {
		set  bool
		name string
	}{{s.TrustedRoot != "", "trustedRoot"}, {s.TrustedRootFile != "", "trustedRootFile"},
		{s.PublicSigstore, "publicSigstore"}, {legacy, "keyless.fulcioRoots/keyless.rekorPublicKey"}} {
		if src.set {
			sources = append(sources, src.name)
		}
	}
	if len(sources) > 1 {
		p.add("spec", "set one source of trust material, not %s", strings.Join(sources, " and "))
		return
	}
	var tr *root.TrustedRoot
	if s.TrustedRoot != "" {
		var err error
		if tr, err = root.NewTrustedRootFromJSON([]byte(s.TrustedRoot)); err != nil {
			p.add("spec.trustedRoot", "not a Sigstore trusted root (trusted_root.json): %v", err)
			return
		}
	}
	if s.TrustedRootFile != "" && !filepath.IsAbs(s.TrustedRootFile) {
		p.add("spec.trustedRootFile", "%q must be an absolute path", s.TrustedRootFile)
	}
	if s.Keyless != nil && len(sources) == 0 {
		p.add("spec.keyless", "needs trust material for certificates: trustedRoot, trustedRootFile, publicSigstore or keyless.fulcioRoots")
	}
	if s.Keyless != nil && legacy && s.Keyless.FulcioRoots == "" {
		p.add("spec.keyless.fulcioRoots", "is required with keyless.rekorPublicKey (or use trustedRoot)")
	}
	// What an inline or legacy source holds is known now; a file or the
	// public instance is checked when it is read.
	hasRekor, hasCT, hasTSA := true, true, true
	switch {
	case tr != nil:
		hasRekor, hasCT, hasTSA = len(tr.RekorLogs()) > 0, len(tr.CTLogs()) > 0, len(tr.TimestampingAuthorities()) > 0
		if s.Keyless != nil && len(tr.FulcioCertificateAuthorities()) == 0 {
			p.add("spec.trustedRoot", "keyless needs at least one certificate authority")
		}
	case legacy || len(sources) == 0:
		hasRekor, hasCT, hasTSA = s.Keyless != nil && s.Keyless.RekorPublicKey != "", false, false
	}
	if s.TLogMode() == ModeRequired && !hasRekor {
		p.add("spec.transparencyLog", "required needs a Rekor log key (trustedRoot, or keyless.rekorPublicKey)")
	}
	if s.Keyless != nil && s.CTLogMode() == ModeRequired && !hasCT {
		p.add("spec.ctlog", "required (the default for keyless) needs a CT log key in a trusted root; set ctlog: ignore to accept certificates without a verified SCT")
	}
	if s.TimestampMode() == ModeRequired && !hasTSA {
		p.add("spec.signedTimestamps", "required needs a timestamp authority in a trusted root")
	}
}

func validateKeyless(k *Keyless, p *problems) {
	pairs := []struct{ plain, re, path string }{
		{k.Issuer, k.IssuerRegExp, "issuer"},
		{k.Subject, k.SubjectRegExp, "subject"},
	}
	for _, pr := range pairs {
		switch {
		case pr.plain == "" && pr.re == "":
			p.add("spec.keyless."+pr.path, "%s or %sRegExp is required", pr.path, pr.path)
		case pr.plain != "" && pr.re != "":
			p.add("spec.keyless."+pr.path, "set %s or %sRegExp, not both", pr.path, pr.path)
		case pr.re != "":
			if _, err := regexp.Compile(pr.re); err != nil {
				p.add("spec.keyless."+pr.path+"RegExp", "invalid regular expression: %v", err)
			}
		}
	}
	if k.FulcioRoots != "" {
		if err := checkCertificates(k.FulcioRoots); err != nil {
			p.add("spec.keyless.fulcioRoots", "%v", err)
		}
	}
	if k.RekorPublicKey != "" {
		if err := checkPublicKey(k.RekorPublicKey); err != nil {
			p.add("spec.keyless.rekorPublicKey", "%v", err)
		}
	}
}

func checkPublicKey(s string) error {
	b, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if b == nil {
		return fmt.Errorf("not a PEM public key (expected -----BEGIN PUBLIC KEY-----)")
	}
	if _, err := x509.ParsePKIXPublicKey(b.Bytes); err != nil {
		return fmt.Errorf("public key does not parse: %v", err)
	}
	return nil
}

func checkCertificates(s string) error {
	rest, n := []byte(s), 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d does not parse: %v", n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no PEM certificate found")
	}
	return nil
}

func (b *BinarySecurityPolicy) validate(p *problems) {
	validateMeta(b.Metadata, p)
	s := b.Spec
	if s.Name != "" {
		p.length("spec.name", s.Name, 1, MaxNameLen)
	}
	p.length("spec.remark", s.Remark, 0, MaxDescriptionLen)
	if s.Policy.PolicyMode != "" {
		p.enum("spec.policy.policyMode", s.Policy.PolicyMode, []string{PolicyModeRequireAttestor})
	}
	if len(s.Policy.RequiredAttestors) == 0 {
		p.add("spec.policy.requiredAttestors", "needs at least one attestor")
	}
	p.nonEmpty("spec.policy.requiredAttestors", s.Policy.RequiredAttestors)
	if doc, _ := json.Marshal(s.Policy); len([]rune(string(doc))) > MaxDocumentLen {
		p.add("spec.policy", "the policy document is %d characters, at most %d allowed", len([]rune(string(doc))), MaxDocumentLen)
	}
	if len(s.Clusters) == 0 {
		p.add("spec.clusters", "needs at least one cluster")
	}
	for i, c := range s.Clusters {
		path := fmt.Sprintf("spec.clusters[%d]", i)
		if c.ClusterID == "" {
			p.add(path+".clusterId", "is required")
		}
		p.nonEmpty(path+".namespaces", c.Namespaces)
	}
	if s.Status != "" {
		p.enum("spec.status", s.Status, []string{StatusEnabled, StatusDisabled})
	}
	p.nonEmpty("spec.images", s.Images)
	p.globs("spec.images", s.Images)
	if s.Mode != "" {
		p.enum("spec.mode", s.Mode, []string{PolicyEnforce, PolicyWarn})
	}
}

func (o *OpaStrategy) validate(p *problems) {
	validateMeta(o.Metadata, p)
	s := o.Spec
	if s.StrategyID <= 0 {
		p.add("spec.strategyId", "must be a positive integer, got %d", s.StrategyID)
	}
	if s.StrategyTemplateID < 0 {
		p.add("spec.strategyTemplateId", "must not be negative")
	}
	if s.StrategyName != "" {
		p.length("spec.strategyName", s.StrategyName, 1, MaxNameLen)
	}
	p.length("spec.clusterName", s.ClusterName, 0, MaxNameLen)
	p.length("spec.description", s.Description, 0, MaxDescriptionLen)
	if s.RuleAction < ActionAlert || s.RuleAction > ActionAllow {
		p.add("spec.ruleAction", "%d is not one of %s", s.RuleAction, RuleActionValues)
	}
	p.nonEmpty("spec.imageName", s.ImageName)
	p.globs("spec.imageName", s.ImageName)
	p.nonEmpty("spec.whiteList", s.WhiteList)
	p.globs("spec.whiteList", s.WhiteList)
	for i, l := range s.Label {
		key, _, _ := strings.Cut(l, ":")
		if !strings.Contains(l, ":") {
			key, _, _ = strings.Cut(l, "=")
		}
		if strings.TrimSpace(key) == "" {
			p.add(fmt.Sprintf("spec.label[%d]", i), "%q: expected key:value, key=value or key", l)
		}
	}
	validateAlarm(s.AlarmDetail, p)
	for i, sc := range s.Scopes {
		path := fmt.Sprintf("spec.scopes[%d]", i)
		if sc.ClusterID == "" {
			p.add(path+".clusterId", "is required")
		}
		if sc.AllNamespace != 0 && sc.AllNamespace != 1 {
			p.add(path+".allNamespace", "%d is not one of %s", sc.AllNamespace, AllNamespaceValues)
		}
		p.nonEmpty(path+".namespaceList", sc.NamespaceList)
	}
	if s.Lang != "" {
		p.enum("spec.lang", s.Lang, langs)
	}
	if s.CurrentPage < 0 || s.PageSize < 0 {
		p.add("spec", "currentPage and pageSize must not be negative")
	}
}

func validateAlarm(a AlarmDetail, p *problems) {
	rules := []struct {
		path string
		r    *RiskRule
	}{
		{"spec.alarmDetail.baseline", a.Baseline},
		{"spec.alarmDetail.maliciousFile", a.MaliciousFile},
		{"spec.alarmDetail.sensitiveFile", a.SensitiveFile},
		{"spec.alarmDetail.buildRisk", a.BuildRisk},
	}
	for _, r := range rules {
		if r.r != nil {
			validateRisk(r.path, r.r.RiskLevel, r.r.Item, p)
		}
	}
	if v := a.Vul; v != nil {
		validateRisk("spec.alarmDetail.vul", v.RiskLevel, v.Item, p)
		for i, c := range v.RiskClass {
			p.enum(fmt.Sprintf("spec.alarmDetail.vul.riskClass[%d].id", i), c.ID, riskClasses)
		}
	}
}

func validateRisk(path string, levels []string, items []Item, p *problems) {
	for i, l := range levels {
		p.enum(fmt.Sprintf("%s.riskLevel[%d]", path, i), l, riskLevels)
	}
	for i, it := range items {
		if strings.TrimSpace(it.ID) == "" {
			p.add(fmt.Sprintf("%s.item[%d].id", path, i), "is required")
		}
	}
}
