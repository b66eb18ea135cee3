package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/imagegate/imagegate/iam"
)

// ControlPolicy is a stored control policy (Alibaba Cloud Resource Directory).
type ControlPolicy struct {
	PolicyID       string   `json:"PolicyId"`
	PolicyName     string   `json:"PolicyName"`
	Description    string   `json:"Description"`
	EffectScope    string   `json:"EffectScope"`
	PolicyType     string   `json:"PolicyType"`
	PolicyDocument string   `json:"PolicyDocument"`
	CreateDate     string   `json:"CreateDate"`
	UpdateDate     string   `json:"UpdateDate"`
	Targets        []string `json:"Targets,omitempty"`
}

// Role is a stored custom policy (Huawei Cloud IAM).
type Role struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	DisplayName   string          `json:"display_name"`
	Type          string          `json:"type"`
	Description   string          `json:"description"`
	DescriptionCN string          `json:"description_cn,omitempty"`
	Policy        json.RawMessage `json:"policy"`
	CreatedTime   string          `json:"created_time"`
	UpdatedTime   string          `json:"updated_time"`
	Targets       []string        `json:"targets,omitempty"`
}

// Agency is a stored agency with its trust policy (Huawei Cloud IAM).
type Agency struct {
	ID                 string `json:"agency_id"`
	Name               string `json:"agency_name"`
	Description        string `json:"description,omitempty"`
	TrustPolicy        string `json:"trust_policy"`
	MaxSessionDuration int    `json:"max_session_duration"`
	CreatedAt          string `json:"created_at"`
}

// stateData is what the state file holds.
type stateData struct {
	ControlPolicies map[string]*ControlPolicy `json:"controlPolicies"`
	Roles           map[string]*Role          `json:"roles"`
	Agencies        map[string]*Agency        `json:"agencies"`
}

// compiled is a state with its documents compiled, swapped as one.
type compiled struct {
	data   *stateData
	auth   *iam.Authorizer
	trusts map[string]*iam.Policy // agency id -> trust policy
}

// state is the IAM state: read lock-free through an atomic pointer, changed
// one at a time by copying, compiling, persisting and then swapping, so a
// change that does not compile or persist leaves the old state in force.
type state struct {
	path      string
	validator iam.Validator
	mu        sync.Mutex
	cur       atomic.Pointer[compiled]
}

// FullAccessPolicyID is the system control policy every fresh state
// attaches to all callers, so attached control policies can deny by
// exception; detach it to bound by allow-list instead.
const FullAccessPolicyID = "cp-FullImagegateAccess"

func openState(path string, v iam.Validator, now string) (*state, error) {
	s := &state{path: path, validator: v}
	d := &stateData{}
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		d.ControlPolicies = map[string]*ControlPolicy{FullAccessPolicyID: {
			PolicyID: FullAccessPolicyID, PolicyName: "FullImagegateAccess", Description: "Allows-every-operation",
			EffectScope: string(iam.ScopeAll), PolicyType: "System", CreateDate: now, UpdateDate: now, Targets: []string{iam.TargetAll},
			PolicyDocument: `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`,
		}}
	case err != nil:
		return nil, fmt.Errorf("--api-state: %w", err)
	default:
		if err := json.Unmarshal(raw, d); err != nil {
			return nil, fmt.Errorf("--api-state %s: %w", path, err)
		}
	}
	c, err := s.compile(d)
	if err != nil {
		return nil, fmt.Errorf("--api-state %s: %w", path, err)
	}
	if err := s.persist(d); err != nil {
		return nil, err
	}
	s.cur.Store(c)
	return s, nil
}

func (s *state) load() *compiled { return s.cur.Load() }

func (s *state) compile(d *stateData) (*compiled, error) {
	if d.ControlPolicies == nil {
		d.ControlPolicies = map[string]*ControlPolicy{}
	}
	if d.Roles == nil {
		d.Roles = map[string]*Role{}
	}
	if d.Agencies == nil {
		d.Agencies = map[string]*Agency{}
	}
	c := &compiled{data: d, trusts: map[string]*iam.Policy{}}
	var control []iam.ControlPolicy
	for _, id := range sortedKeys(d.ControlPolicies) {
		cp := d.ControlPolicies[id]
		p, err := s.validator.Parse("PolicyDocument", cp.PolicyDocument, iam.Permission)
		if err != nil {
			return nil, fmt.Errorf("control policy %s: %w", id, err)
		}
		control = append(control, iam.ControlPolicy{ID: id, Scope: iam.EffectScope(cp.EffectScope), Policy: p, Targets: cp.Targets})
	}
	var custom []iam.CustomPolicy
	for _, id := range sortedKeys(d.Roles) {
		r := d.Roles[id]
		p, err := s.validator.Parse("policy", string(r.Policy), iam.Permission)
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", id, err)
		}
		custom = append(custom, iam.CustomPolicy{ID: id, Policy: p, Targets: r.Targets})
	}
	for id, a := range d.Agencies {
		p, err := s.validator.Parse("trust_policy", a.TrustPolicy, iam.Trust)
		if err != nil {
			return nil, fmt.Errorf("agency %s: %w", id, err)
		}
		c.trusts[id] = p
	}
	c.auth = iam.NewAuthorizer(control, custom)
	return c, nil
}

// update applies fn to a copy of the state; fn's error (or a compile or
// write failure) leaves the state as it was.
func (s *state) update(fn func(d *stateData) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, err := json.Marshal(s.cur.Load().data)
	if err != nil {
		return err
	}
	d := &stateData{}
	if err := json.Unmarshal(raw, d); err != nil {
		return err
	}
	if err := fn(d); err != nil {
		return err
	}
	c, err := s.compile(d)
	if err != nil {
		return err
	}
	if err := s.persist(d); err != nil {
		return err
	}
	s.cur.Store(c)
	return nil
}

func (s *state) persist(d *stateData) error {
	raw, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(s.path, raw, 0o600); err != nil {
		return fmt.Errorf("writing IAM state %s: %w", s.path, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
