package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imagegate/imagegate/iam"
)

// ControlPolicy is a stored control policy (Resource Directory).
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

// Role is a stored custom policy (IAM v3).
type Role struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	DisplayName   string          `json:"display_name"`
	Type          string          `json:"type"`
	Description   string          `json:"description"`
	DescriptionCN *string         `json:"description_cn,omitempty"`
	Policy        json.RawMessage `json:"policy"`
	CreatedTime   string          `json:"created_time"`
	UpdatedTime   string          `json:"updated_time"`
	Targets       []string        `json:"targets,omitempty"`
}

// Agency is a stored agency with its trust policy (IAM v5).
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
	AccessKeys      map[string]*AccessKey     `json:"accessKeys,omitempty"`
}

// compiled is a state with its documents compiled, swapped as one.
type compiled struct {
	data   *stateData
	auth   *iam.Authorizer
	trusts map[string]*iam.Policy // agency id -> trust policy
	keys   map[string]liveKey     // access key id -> its principal and secret
}

// state is the IAM state: read lock-free through an atomic pointer, changed
// one at a time by copying, compiling, persisting and then swapping, so a
// change that does not compile or persist leaves the old state in force.
//
// The file is shared with `imagegate access-key create`, which adds keys
// while serve runs: every change holds an advisory lock on <file>.lock and
// starts from the file as it is, and reads notice a changed file within
// reloadEvery.
type state struct {
	path      string
	validator iam.Validator
	sealer    *Sealer // nil: access keys are off
	mu        sync.Mutex
	cur       atomic.Pointer[compiled]
	stamp     string       // of the file cur was read from or written to; s.mu
	checked   atomic.Int64 // unix nanoseconds of the last look at the file
	onReload  func(error)  // a changed file that does not load (the state in force stays)
}

// stateReloadEvery is how often reads look whether the state file changed.
const stateReloadEvery = 2 * time.Second

// FullAccessPolicyID is the system control policy every fresh state
// attaches to all callers, so attached control policies can deny by
// exception; detach it to bound by allow-list instead.
const FullAccessPolicyID = "cp-FullImagegateAccess"

func openState(path string, v iam.Validator, sealer *Sealer, now string) (*state, error) {
	s := &state{path: path, validator: v, sealer: sealer}
	unlock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	defer unlock()
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
	s.checked.Store(time.Now().UnixNano())
	return s, nil
}

// load is the state in force, re-read first when the file changed (looked
// at most every stateReloadEvery, without blocking other readers).
func (s *state) load() *compiled {
	now := time.Now().UnixNano()
	if last := s.checked.Load(); now-last > int64(stateReloadEvery) && s.checked.CompareAndSwap(last, now) {
		s.mu.Lock()
		if err := s.reloadIfChanged(); err != nil && s.onReload != nil {
			s.onReload(err)
		}
		s.mu.Unlock()
	}
	return s.cur.Load()
}

// reloadIfChanged reads the file when it is not the version in force; s.mu
// is held.
func (s *state) reloadIfChanged() error {
	stamp, err := fileStamp(s.path)
	if err != nil || stamp == s.stamp {
		return err
	}
	raw, err := os.ReadFile(s.path)
	if err != nil {
		return err
	}
	d := &stateData{}
	if err := json.Unmarshal(raw, d); err != nil {
		return fmt.Errorf("--api-state %s changed and does not parse: %w", s.path, err)
	}
	c, err := s.compile(d)
	if err != nil {
		return fmt.Errorf("--api-state %s changed and does not load: %w", s.path, err)
	}
	s.cur.Store(c)
	s.stamp = stamp
	return nil
}

// lockFile takes the advisory lock serializing writers of the state file
// across processes.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--api-state lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("--api-state lock: %w", err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

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
	if d.AccessKeys == nil {
		d.AccessKeys = map[string]*AccessKey{}
	}
	c := &compiled{data: d, trusts: map[string]*iam.Policy{}}
	keys, err := s.openKeys(d.AccessKeys)
	if err != nil {
		return nil, err
	}
	c.keys = keys
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
		p, err := s.validator.Parse("policy", string(r.Policy), iam.Custom)
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
	unlock, err := lockFile(s.path)
	if err != nil {
		return err
	}
	defer unlock()
	// Start from the file as it is: another process may have added to it.
	if err := s.reloadIfChanged(); err != nil {
		return err
	}
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
	stamp, err := fileStamp(s.path)
	if err != nil {
		return err
	}
	s.stamp = stamp
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
