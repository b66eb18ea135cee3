package api

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/iam"
	"github.com/imagegate/imagegate/policy"
)

var opaFields = []field{
	{"StrategyTemplateId", "strategyTemplateId", fInt},
	{"StrategyName", "strategyName", fString},
	{"Description", "description", fString},
	{"ClusterId", "clusterId", fString},
	{"ClusterName", "clusterName", fString},
	{"UnScanedImage", "unScanedImage", fBool},
	{"MaliciousImage", "maliciousImage", fBool},
	{"ImageName", "imageName", fJSON},
	{"Label", "label", fJSON},
	{"RuleAction", "ruleAction", fInt},
	{"WhiteList", "whiteList", fJSON},
	{"AlarmDetail", "alarmDetail", fJSON},
	{"Scopes", "scopes", fJSON},
	{"Lang", "lang", fString},
}

func opaResource(id string) string { return "imagegate:opastrategy/" + id }

// opaContext: the rule action, and every cluster and namespace the strategy
// applies to ("*" for all namespaces).
func opaContext(s *policy.OpaStrategy) map[string][]string {
	var clusters, namespaces []string
	seen := map[string]bool{}
	addCluster := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			clusters = append(clusters, id)
		}
	}
	addCluster(s.Spec.ClusterID)
	for _, sc := range s.Spec.Scopes {
		addCluster(sc.ClusterID)
		if sc.AllNamespace == 1 {
			namespaces = append(namespaces, "*")
		} else {
			namespaces = append(namespaces, sc.NamespaceList...)
		}
	}
	if len(s.Spec.Scopes) == 0 {
		namespaces = append(namespaces, "*")
	}
	return map[string][]string{iam.KeyRuleAction: {strconv.Itoa(s.Spec.RuleAction)}, iam.KeyClusterID: clusters, iam.KeyNamespace: namespaces}
}

func findOpa(snap *policy.Snapshot, id int64) *policy.OpaStrategy {
	for _, s := range snap.Strategies() {
		if s.Spec.StrategyID == id {
			return s
		}
	}
	return nil
}

func (c *call) strategyID() (int64, error) {
	raw, err := c.required("StrategyId")
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil || id < 1 {
		return 0, errParam("StrategyId", "StrategyId: %q is not a positive integer", raw)
	}
	return id, nil
}

// plain wraps a result the way GetOpaStrategyDetailNew answers (PlainResult).
func plain(data any) map[string]any {
	return map[string]any{"Data": data, "Success": true, "Code": "200", "Message": "success", "HttpStatusCode": http.StatusOK}
}

func (h *Handler) createOpa(c *call) (map[string]any, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	if _, err := c.required("StrategyName"); err != nil {
		return nil, err
	}
	if _, err := c.required("RuleAction"); err != nil {
		return nil, err
	}
	snap, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	var next int64 = 1
	names := map[string]bool{}
	for _, s := range snap.Strategies() {
		next = max(next, s.Spec.StrategyID+1)
		names[s.Metadata.Name] = true
	}
	// The new object's name must be free too: a strategy written by hand
	// may be called opastrategy-<next>, and a write under its name would
	// replace it without the caller being authorized on it.
	for names[fmt.Sprintf("opastrategy-%d", next)] {
		next++
	}
	obj := &policy.OpaStrategy{TypeMeta: policy.TypeMeta{APIVersion: policy.APIVersion, Kind: policy.KindOpaStrategy},
		Metadata: policy.ObjectMeta{Name: fmt.Sprintf("opastrategy-%d", next)}, Spec: policy.OpaStrategySpec{StrategyID: next}}
	if err := c.setFields(&obj.Spec, opaFields); err != nil {
		return nil, err
	}
	if err := c.authorize("CreateOpaStrategyNew", opaResource(strconv.FormatInt(next, 10)), opaContext(obj)); err != nil {
		return nil, err
	}
	if err := h.store.Apply(Change{Put: obj}); err != nil {
		return nil, applyErr(err, refOf(obj), opaFields, "StrategyName")
	}
	return plain(map[string]any{"StrategyId": next}), nil
}

func (h *Handler) updateOpa(c *call) (map[string]any, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	id, err := c.strategyID()
	if err != nil {
		return nil, err
	}
	snap, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	res := opaResource(strconv.FormatInt(id, 10))
	existing := findOpa(snap, id)
	if existing == nil {
		if err := c.authorize("UpdateOpaStrategyNew", res, nil); err != nil {
			return nil, err
		}
		return nil, errNotFound("OpaStrategy", strconv.FormatInt(id, 10))
	}
	// The caller must be allowed on the strategy as it is, not only as it
	// will be: otherwise a change could move a production strategy into a
	// cluster the caller may write.
	if err := c.authorize("UpdateOpaStrategyNew", res, opaContext(existing)); err != nil {
		return nil, err
	}
	obj := &policy.OpaStrategy{TypeMeta: existing.TypeMeta, Metadata: existing.Metadata, Spec: existing.Spec}
	if err := c.setFields(&obj.Spec, opaFields); err != nil {
		return nil, err
	}
	if err := c.authorize("UpdateOpaStrategyNew", res, opaContext(obj)); err != nil {
		return nil, err
	}
	if err := h.store.Apply(Change{Put: obj}); err != nil {
		return nil, applyErr(err, refOf(obj), opaFields, "StrategyName")
	}
	return plain(map[string]any{"StrategyId": id}), nil
}

func (h *Handler) getOpa(c *call) (map[string]any, error) {
	id, err := c.strategyID()
	if err != nil {
		return nil, err
	}
	snap, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	existing := findOpa(snap, id)
	var ctx map[string][]string
	if existing != nil {
		ctx = opaContext(existing)
	}
	if err := c.authorize("GetOpaStrategyDetailNew", opaResource(strconv.FormatInt(id, 10)), ctx); err != nil {
		return nil, err
	}
	if existing == nil {
		return nil, errNotFound("OpaStrategy", strconv.FormatInt(id, 10))
	}
	return plain(opaData(existing)), nil
}

func (h *Handler) deleteOpa(c *call) (map[string]any, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	id, err := c.strategyID()
	if err != nil {
		return nil, err
	}
	snap, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	existing := findOpa(snap, id)
	var ctx map[string][]string
	if existing != nil {
		ctx = opaContext(existing)
	}
	if err := c.authorize("DeleteOpaStrategyNew", opaResource(strconv.FormatInt(id, 10)), ctx); err != nil {
		return nil, err
	}
	if existing == nil {
		return nil, errNotFound("OpaStrategy", strconv.FormatInt(id, 10))
	}
	ref := refOf(existing)
	if err := h.store.Apply(Change{Delete: &ref}); err != nil {
		return nil, applyErr(err, ref, opaFields, "StrategyId")
	}
	return plain(map[string]any{"StrategyId": id}), nil
}

func (h *Handler) listOpa(c *call) (map[string]any, error) {
	page, size, err := c.page("CurrentPage")
	if err != nil {
		return nil, err
	}
	name, _ := c.param("StrategyName")
	cluster, _ := c.param("ClusterId")
	if err := c.authorize("ListOpaClusterStrategyNew", opaResource("*"), map[string][]string{iam.KeyClusterID: nonEmpty(cluster)}); err != nil {
		return nil, err
	}
	snap, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	var list []any
	for _, s := range snap.Strategies() {
		if name != "" && !strings.Contains(s.Name(), name) {
			continue
		}
		if cluster != "" && !slices.Contains(opaContext(s)[iam.KeyClusterID], cluster) {
			continue
		}
		list = append(list, opaData(s))
	}
	out := plain(pageOf(list, page, size))
	out["PageInfo"] = pageInfo(page, size, len(list))
	return out, nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// opaDTO is GetOpaStrategyDetailNew's Data object, every field present.
type opaDTO struct {
	StrategyID         int64      `json:"StrategyId"`
	StrategyTemplateID int64      `json:"StrategyTemplateId"`
	ClusterID          string     `json:"ClusterId"`
	StrategyName       string     `json:"StrategyName"`
	Description        string     `json:"Description"`
	ClusterName        string     `json:"ClusterName"`
	UnScanedImage      bool       `json:"UnScanedImage"`
	MaliciousImage     bool       `json:"MaliciousImage"`
	ImageName          []string   `json:"ImageName"`
	Label              []string   `json:"Label"`
	RuleAction         int        `json:"RuleAction"`
	WhiteList          []string   `json:"WhiteList"`
	AlarmDetail        alarmDTO   `json:"AlarmDetail"`
	Scopes             []scopeDTO `json:"Scopes"`
	Lang               string     `json:"Lang"`
	CurrentPage        int        `json:"CurrentPage"`
	PageSize           int        `json:"PageSize"`
}

type itemDTO struct {
	ID   string `json:"Id"`
	Name string `json:"Name"`
}

type riskDTO struct {
	RiskLevel []string  `json:"RiskLevel"`
	Item      []itemDTO `json:"Item"`
	RiskClass []itemDTO `json:"RiskClass,omitempty"`
}

type alarmDTO struct {
	Baseline      *riskDTO `json:"Baseline,omitempty"`
	Vul           *riskDTO `json:"Vul,omitempty"`
	MaliciousFile *riskDTO `json:"MaliciousFile,omitempty"`
	SensitiveFile *riskDTO `json:"SensitiveFile,omitempty"`
	BuildRisk     *riskDTO `json:"BuildRisk,omitempty"`
}

type scopeDTO struct {
	ClusterID           string   `json:"ClusterId"`
	AllNamespace        int      `json:"AllNamespace"`
	NamespaceList       []string `json:"NamespaceList"`
	AckPolicyInstanceID string   `json:"AckPolicyInstanceId"`
}

func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func items(in []policy.Item) []itemDTO {
	out := []itemDTO{}
	for _, it := range in {
		out = append(out, itemDTO{it.ID, it.Name})
	}
	return out
}

func risk(r *policy.RiskRule) *riskDTO {
	if r == nil {
		return nil
	}
	return &riskDTO{RiskLevel: strs(r.RiskLevel), Item: items(r.Item)}
}

func opaData(s *policy.OpaStrategy) opaDTO {
	sp := s.Spec
	d := opaDTO{
		StrategyID: sp.StrategyID, StrategyTemplateID: sp.StrategyTemplateID, ClusterID: sp.ClusterID,
		StrategyName: s.Name(), Description: sp.Description, ClusterName: sp.ClusterName,
		UnScanedImage: sp.UnScanedImage, MaliciousImage: sp.MaliciousImage, ImageName: strs(sp.ImageName),
		Label: strs(sp.Label), RuleAction: sp.RuleAction, WhiteList: strs(sp.WhiteList), Lang: sp.Lang,
		CurrentPage: sp.CurrentPage, PageSize: sp.PageSize, Scopes: []scopeDTO{},
		AlarmDetail: alarmDTO{Baseline: risk(sp.AlarmDetail.Baseline), MaliciousFile: risk(sp.AlarmDetail.MaliciousFile),
			SensitiveFile: risk(sp.AlarmDetail.SensitiveFile), BuildRisk: risk(sp.AlarmDetail.BuildRisk)},
	}
	if v := sp.AlarmDetail.Vul; v != nil {
		d.AlarmDetail.Vul = &riskDTO{RiskLevel: strs(v.RiskLevel), Item: items(v.Item), RiskClass: items(v.RiskClass)}
	}
	for _, sc := range sp.Scopes {
		d.Scopes = append(d.Scopes, scopeDTO{sc.ClusterID, sc.AllNamespace, strs(sc.NamespaceList), sc.AckPolicyInstanceID})
	}
	return d
}
