package api

import "testing"

// TestOpaStrategyDefaults: Lang and CurrentPage answer their documented
// defaults when the strategy did not set them.
func TestOpaStrategyDefaults(t *testing.T) {
	e := newEnv(t)
	st, body := e.rpc("admin-token", "CreateOpaStrategyNew", "StrategyName", "s", "RuleAction", "1", "ClusterId", "c1")
	expect(t, st, body, 200, "")
	st, body = e.rpc("admin-token", "CreateOpaStrategyNew", "StrategyName", "en", "RuleAction", "1", "ClusterId", "c1", "Lang", "en")
	expect(t, st, body, 200, "")
	cases := []struct{ id, lang string }{{"1", "zh"}, {"2", "en"}}
	for _, c := range cases {
		t.Run("strategy "+c.id, func(t *testing.T) {
			st, body := e.rpc("admin-token", "GetOpaStrategyDetailNew", "StrategyId", c.id)
			expect(t, st, body, 200, "")
			d := body["Data"].(map[string]any)
			if d["Lang"] != c.lang || d["CurrentPage"] != 1.0 {
				t.Errorf("Lang %v CurrentPage %v, want %s and 1", d["Lang"], d["CurrentPage"], c.lang)
			}
		})
	}
	st, body = e.rpc("admin-token", "ListOpaClusterStrategyNew")
	expect(t, st, body, 200, "")
	if d := body["Data"].([]any)[0].(map[string]any); d["Lang"] != "zh" || d["CurrentPage"] != 1.0 {
		t.Errorf("list: %v", d)
	}
}
