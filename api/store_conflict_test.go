package api

import (
	"errors"
	"testing"
)

// racingStore loses every write race, as the custom-resource store does
// when the object changed in the cluster after it was read.
type racingStore struct{ Store }

func (racingStore) Apply(c Change) error {
	target := Ref{}
	if c.Put != nil {
		target = refOf(c.Put)
	} else if c.Delete != nil {
		target = *c.Delete
	}
	return &ConflictError{Target: target, Err: errors.New("resourceVersion 7 was read, the cluster has 8")}
}

func TestConcurrentModificationIs409(t *testing.T) {
	e := newEnv(t)
	if st, body := e.rpc("admin-token", "CreateOpaStrategyNew", "StrategyName", "s", "RuleAction", "2", "ClusterId", "c1"); st != 200 {
		t.Fatalf("setup: %d %v", st, body)
	}
	e.h.store = racingStore{e.h.store}
	tests := []struct {
		name, action string
		kv           []string
	}{
		{"create", "CreateOpaStrategyNew", []string{"StrategyName", "t", "RuleAction", "2", "ClusterId", "c1"}},
		{"update", "UpdateOpaStrategyNew", []string{"StrategyId", "1", "RuleAction", "1"}},
		{"delete", "DeleteOpaStrategyNew", []string{"StrategyId", "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body := e.rpc("admin-token", tc.action, tc.kv...)
			expect(t, st, body, 409, "Conflict.ConcurrentModification")
		})
	}
	snap, err := e.h.store.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if s := snap.Strategies(); len(s) != 1 || s[0].Spec.RuleAction != 2 {
		t.Errorf("a lost race changed the objects: %+v", s)
	}
}
