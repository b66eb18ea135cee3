package iam

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Condition keys a request can carry.
const (
	KeyClusterID       = "imagegate:ClusterId"
	KeyNamespace       = "imagegate:Namespace"
	KeyRuleAction      = "imagegate:RuleAction"
	KeyStatus          = "imagegate:Status"
	KeyAttestor        = "imagegate:Attestor"
	KeyPrincipal       = "imagegate:Principal"
	KeySourceIP        = "acs:SourceIp"
	KeyCurrentTime     = "acs:CurrentTime"
	KeySecureTransport = "acs:SecureTransport"
)

// keys maps the lower-cased spelling to the canonical one: condition keys
// are case-insensitive, as in the clouds whose policies this reproduces.
var keys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{KeyClusterID, KeyNamespace, KeyRuleAction, KeyStatus, KeyAttestor, KeyPrincipal,
		KeySourceIP, KeyCurrentTime, KeySecureTransport} {
		m[strings.ToLower(k)] = k
	}
	return m
}()

// Keys lists the condition keys documents may use.
func Keys() []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

type opFunc func(c *condition, v string) bool

type operator struct {
	parse func(c *condition, vals []string) error
	test  opFunc
}

var operators = map[string]operator{
	"StringEquals":    {parseStrings, func(c *condition, v string) bool { return slices.Contains(c.strs, v) }},
	"StringNotEquals": {parseStrings, func(c *condition, v string) bool { return !slices.Contains(c.strs, v) }},
	"StringEqualsIgnoreCase": {parseStrings, func(c *condition, v string) bool {
		return slices.ContainsFunc(c.strs, func(s string) bool { return strings.EqualFold(s, v) })
	}},
	"StringLike":    {parseGlobs, func(c *condition, v string) bool { return anyMatch(c.globs, v) }},
	"StringNotLike": {parseGlobs, func(c *condition, v string) bool { return !anyMatch(c.globs, v) }},
	"StringStartWith": {parseStrings, func(c *condition, v string) bool {
		return slices.ContainsFunc(c.strs, func(p string) bool { return strings.HasPrefix(v, p) })
	}},
	"NumericEquals":            {parseNums, numTest(func(a, b float64) bool { return a == b })},
	"NumericNotEquals":         {parseNums, func(c *condition, v string) bool { return !numTest(func(a, b float64) bool { return a == b })(c, v) }},
	"NumericLessThan":          {parseNums, numTest(func(a, b float64) bool { return a < b })},
	"NumericLessThanEquals":    {parseNums, numTest(func(a, b float64) bool { return a <= b })},
	"NumericGreaterThan":       {parseNums, numTest(func(a, b float64) bool { return a > b })},
	"NumericGreaterThanEquals": {parseNums, numTest(func(a, b float64) bool { return a >= b })},
	"Bool":                     {parseBools, func(c *condition, v string) bool { return slices.Contains(c.strs, strings.ToLower(v)) }},
	"IpAddress":                {parseNets, func(c *condition, v string) bool { return inNets(c, v) }},
	"NotIpAddress":             {parseNets, func(c *condition, v string) bool { return !inNets(c, v) }},
	"DateLessThan":             {parseDates, dateTest(func(a, b time.Time) bool { return a.Before(b) })},
	"DateGreaterThan":          {parseDates, dateTest(func(a, b time.Time) bool { return a.After(b) })},
}

// Operators lists the condition operators documents may use.
func Operators() []string {
	out := make([]string, 0, len(operators))
	for k := range operators {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// condition is one operator over one key, its values parsed once.
type condition struct {
	key   string
	test  opFunc
	strs  []string
	globs []matcher
	nums  []float64
	nets  []netip.Prefix
	times []time.Time
}

func compileCondition(op, key string, vals valueList) (condition, error) {
	o, ok := operators[op]
	if !ok {
		return condition{}, fmt.Errorf("unknown condition operator %q (expected one of %s)", op, strings.Join(Operators(), ", "))
	}
	canon, ok := keys[strings.ToLower(key)]
	if !ok {
		return condition{}, fmt.Errorf("unknown condition key %q (expected one of %s)", key, strings.Join(Keys(), ", "))
	}
	if len(vals) == 0 {
		return condition{}, errors.New("needs at least one value")
	}
	c := condition{key: canon, test: o.test}
	if err := o.parse(&c, vals); err != nil {
		return condition{}, err
	}
	return c, nil
}

func parseStrings(c *condition, vals []string) error { c.strs = vals; return nil }

func parseGlobs(c *condition, vals []string) error {
	for _, v := range vals {
		c.globs = append(c.globs, compileMatcher(v))
	}
	return nil
}

func parseNums(c *condition, vals []string) error {
	for _, v := range vals {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		c.nums = append(c.nums, f)
	}
	return nil
}

func parseBools(c *condition, vals []string) error {
	for _, v := range vals {
		lv := strings.ToLower(v)
		if lv != "true" && lv != "false" {
			return fmt.Errorf("%q: expected true or false", v)
		}
		c.strs = append(c.strs, lv)
	}
	return nil
}

func parseNets(c *condition, vals []string) error {
	for _, v := range vals {
		if p, err := netip.ParsePrefix(v); err == nil {
			c.nets = append(c.nets, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return fmt.Errorf("%q is not an IP address or CIDR block", v)
		}
		c.nets = append(c.nets, netip.PrefixFrom(a, a.BitLen()))
	}
	return nil
}

func parseDates(c *condition, vals []string) error {
	for _, v := range vals {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return fmt.Errorf("%q: expected an RFC 3339 time (2026-01-02T15:04:05Z)", v)
		}
		c.times = append(c.times, t)
	}
	return nil
}

func numTest(cmp func(a, b float64) bool) opFunc {
	return func(c *condition, v string) bool {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false
		}
		return slices.ContainsFunc(c.nums, func(n float64) bool { return cmp(f, n) })
	}
}

func dateTest(cmp func(a, b time.Time) bool) opFunc {
	return func(c *condition, v string) bool {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return false
		}
		return slices.ContainsFunc(c.times, func(n time.Time) bool { return cmp(t, n) })
	}
}

func inNets(c *condition, v string) bool {
	a, err := netip.ParseAddr(v)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return slices.ContainsFunc(c.nets, func(p netip.Prefix) bool { return p.Contains(a) })
}

// holds evaluates the condition over the request's values of its key. A
// request without the key never meets a condition. A key can have several
// values (a policy names several clusters): an Allow needs every value to
// meet the condition, a Deny applies when any does, so a multi-cluster
// request can neither borrow an Allow nor slip past a Deny.
func (c *condition) holds(ctx map[string][]string, allow bool) bool {
	vals, ok := ctx[c.key]
	if !ok || len(vals) == 0 {
		return false
	}
	for _, v := range vals {
		if c.test(c, v) != allow {
			return !allow
		}
	}
	return allow
}
