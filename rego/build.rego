# Snapshot-time half of the decision: everything that depends only on the
# policy objects and the webhook's cluster id is computed here once, when a
# snapshot is compiled, into an index of strategy-id sets. The request-time
# module (decision.rego) then only combines sets.
package imagegate.build

config := data.imagegate.config

strategies := data.imagegate.objects.strategies

policies := data.imagegate.objects.policies

# An empty cluster id (imagegate check without --cluster-id) stands for every
# cluster at once.
cluster_match(id) if config.clusterId == ""

cluster_match(id) if id == config.clusterId

# A strategy without scopes applies to its clusterId in every namespace; one
# that names no cluster at all applies to every cluster.
strategy_cluster_match(s) if object.get(s, "clusterId", "") == ""

strategy_cluster_match(s) if cluster_match(s.clusterId)

all_namespaces contains s.strategyId if {
	some s in strategies
	count(object.get(s, "scopes", [])) == 0
	strategy_cluster_match(s)
}

all_namespaces contains s.strategyId if {
	some s in strategies
	some sc in object.get(s, "scopes", [])
	cluster_match(sc.clusterId)
	scope_all(sc)
}

scope_all(sc) if object.get(sc, "allNamespace", 0) == 1

scope_all(sc) if "*" in object.get(sc, "namespaceList", [])

by_namespace[ns] contains s.strategyId if {
	some s in strategies
	some sc in object.get(s, "scopes", [])
	cluster_match(sc.clusterId)
	not scope_all(sc)
	some ns in object.get(sc, "namespaceList", [])
}

relevant := all_namespaces | {id | some ids in by_namespace; some id in ids}

by_id := {s.strategyId: s | some s in strategies; s.strategyId in relevant}

# --- targeting ---------------------------------------------------------------
#
# Requests describe an image by keys (see input.go): "n:<name>" for every
# form of its name, "t:<tag>", and per finding "l:<category>|<level>|<class>"
# and "i:<category>|<id>|<class>", each also with class "*". The index maps the
# same keys to the strategies they satisfy, so a request looks keys up
# instead of walking strategies.

is_glob(p) if regex.match(`[*?\[]`, p)

name_any contains id if {
	some id, s in by_id
	count(object.get(s, "imageName", [])) == 0
}

names[concat("", ["n:", n])] contains id if {
	some id, s in by_id
	some n in object.get(s, "imageName", [])
	not is_glob(n)
}

name_globs[n] contains id if {
	some id, s in by_id
	some n in object.get(s, "imageName", [])
	is_glob(n)
}

label_any contains id if {
	some id, s in by_id
	count(object.get(s, "label", [])) == 0
}

# label entries: key:value (key=value is accepted too) or key for presence.
label_kv[k][v] contains id if {
	some id, s in by_id
	some l in object.get(s, "label", [])
	[k, v] := label_pair(l)
}

label_key[k] contains id if {
	some id, s in by_id
	some l in object.get(s, "label", [])
	not label_pair(l)
	k := trim_space(l)
}

label_pair(l) := [trim_space(p[0]), trim_space(p[1])] if {
	contains(l, ":")
	p := split_once(l, ":")
} else := [trim_space(p[0]), trim_space(p[1])] if {
	contains(l, "=")
	p := split_once(l, "=")
}

split_once(s, sep) := [substring(s, 0, i), substring(s, i + 1, -1)] if i := indexof(s, sep)

tags[concat("", ["t:", t])] contains id if {
	some id, s in by_id
	some t in object.get(s, "whiteList", [])
	not is_glob(t)
}

tag_globs[t] contains id if {
	some id, s in by_id
	some t in object.get(s, "whiteList", [])
	is_glob(t)
}

# --- criteria ------------------------------------------------------------------

# AlarmDetail keys and the finding categories they select.
categories := {
	"baseline": "Baseline",
	"vul": "Vul",
	"maliciousFile": "MaliciousFile",
	"sensitiveFile": "SensitiveFile",
	"buildRisk": "BuildRisk",
}

rule(s, key) := object.get(object.get(s, "alarmDetail", {}), key, {})

unscanned contains id if {
	some id, s in by_id
	s.unScanedImage == true
}

malicious contains id if {
	some id, s in by_id
	s.maliciousImage == true
}

configured(s) if s.unScanedImage == true

configured(s) if s.maliciousImage == true

configured(s) if {
	some key, _ in categories
	some field in ["riskLevel", "item", "riskClass"]
	count(object.get(rule(s, key), field, [])) > 0
}

# A strategy with no criteria is a pure name/label rule: it hits every image
# it targets.
no_criteria contains id if {
	some id, s in by_id
	not configured(s)
}

# A finding hits a strategy when its level is in riskLevel or its id in item,
# and, for Vul with riskClass set, its class is in riskClass. Findings of
# other categories have no class filter ("*").
class_keys(s, "vul") := {c.id | some c in rule(s, "vul").riskClass} if {
	count(object.get(rule(s, "vul"), "riskClass", [])) > 0
} else := {"*"}

class_keys(s, key) := {"*"} if key != "vul"

finding_keys[id] contains k if {
	some id, s in by_id
	some key, cat in categories
	some c in class_keys(s, key)
	some lvl in object.get(rule(s, key), "riskLevel", [])
	k := concat("", ["l:", cat, "|", lvl, "|", c])
}

finding_keys[id] contains k if {
	some id, s in by_id
	some key, cat in categories
	some c in class_keys(s, key)
	some item in object.get(rule(s, key), "item", [])
	k := concat("", ["i:", cat, "|", item.id, "|", c])
}

findings[k] contains id if {
	some id, keys in finding_keys
	some k in keys
}

action(code) := {id | some id, s in by_id; s.ruleAction == code}

# Per strategy, what its message lines need: the action, the text naming it
# (`blocked by strategy 12 "name": `), its reason key (the JSON of its
# reason, below) and the suffix of its line under each verdict.
meta[id] := {"action": action, "text": text, "reason": json.marshal([r.flags, sort(r.keys)]), "suffix": suffixes[action]} if {
	some id, r in reason_of
	s := by_id[id]
	action := verdicts[s.ruleAction]
	text := sprintf("%s by strategy %d %q: ", [verbs[action], id, s.name])
}

verdicts := {1: "alert", 2: "block", 3: "allow"}

verbs := {"alert": "alerted", "block": "blocked", "allow": "allowed"}

# A line of a strategy whose action lost to the verdict says so:
# suffixes[action][verdict].
suffixes := {a: {v: suffix(a, v) | some v in actions} | some a in actions}

actions := ["alert", "block", "allow"]

suffix(a, v) := "" if a == v else := sprintf(" (overridden by %s)", [v])

# Strategies with the same criteria explain a hit on an image the same way
# (the unscanned and malicious flags, then the findings behind their keys), so
# the request explains each distinct reason once.
reason_of[id] := {"flags": flags, "keys": object.get(finding_keys, id, set())} if {
	some id, _ in by_id
	flags := array.concat(["u" | id in unscanned], ["m" | id in malicious])
}

reasons[m.reason] := reason_of[id] if {
	some id, m in meta
}

# --- signature gate ----------------------------------------------------------

enabled(p) if object.get(p, "status", "enabled") != "disabled"

policy_ns_all(c) if count(object.get(c, "namespaces", [])) == 0

policy_ns_all(c) if "*" in c.namespaces

attestors_all contains a if {
	some p in policies
	enabled(p)
	some c in p.clusters
	cluster_match(c.clusterId)
	policy_ns_all(c)
	some a in p.policy.requiredAttestors
}

attestors_by_namespace[ns] contains a if {
	some p in policies
	enabled(p)
	some c in p.clusters
	cluster_match(c.clusterId)
	not policy_ns_all(c)
	some ns in c.namespaces
	some a in p.policy.requiredAttestors
}

# Per policy, for the per-image half of the gate: a policy in force here
# applies to an image in a namespace when one of its clusters lists the
# namespace (or every namespace) and its images globs name the image (or
# it has none). Which policies apply in the namespace and which name the
# image are resolved per request from these sets; decision.rego unions the
# attestors of those that apply both ways, enforce winning over warn.
policy_ns_default contains p.id if {
	some p in policies
	enabled(p)
	some c in p.clusters
	cluster_match(c.clusterId)
	policy_ns_all(c)
}

policy_by_namespace[ns] contains p.id if {
	some p in policies
	enabled(p)
	some c in p.clusters
	cluster_match(c.clusterId)
	not policy_ns_all(c)
	some ns in c.namespaces
}

relevant_policies := policy_ns_default | {id | some ids in policy_by_namespace; some id in ids}

policy_by_id := {p.id: p | some p in policies; p.id in relevant_policies}

policy_images_any contains id if {
	some id, p in policy_by_id
	count(object.get(p, "images", [])) == 0
}

policy_images[n] contains id if {
	some id, p in policy_by_id
	some n in object.get(p, "images", [])
	not is_glob(n)
}

policy_image_globs[n] contains id if {
	some id, p in policy_by_id
	some n in object.get(p, "images", [])
	is_glob(n)
}

policy_attestors[id] := {a | some a in p.policy.requiredAttestors} if some id, p in policy_by_id

warn_policies contains id if {
	some id, p in policy_by_id
	object.get(p, "mode", "enforce") == "warn"
}

# --- the index -----------------------------------------------------------------

# Each name and label key selects the strategies whose entries it meets and
# those without entries (which target every image), so that the targeted
# strategies of an image are the union of its keys' sets, or nameAny
# (labelAny) when no key matches: one set per image for the request to
# intersect.

index := {
	"applicableDefault": all_namespaces,
	"applicable": {ns: ids | some ns, nids in by_namespace; ids := all_namespaces | nids},
	"policiesDefault": policy_ns_default,
	"policies": {ns: ids | some ns, nids in policy_by_namespace; ids := policy_ns_default | nids},
	"policyImagesAny": policy_images_any,
	"policyImages": {n: with_any | some n, ids in policy_images; with_any := ids | policy_images_any},
	"policyImageGlobs": {n: with_any | some n, ids in policy_image_globs; with_any := ids | policy_images_any},
	"policyAttestors": policy_attestors,
	"warnPolicies": warn_policies,
	"requiredDefault": attestors_all,
	"required": {ns: atts | some ns, nas in attestors_by_namespace; atts := attestors_all | nas},
	"nameAny": name_any,
	"names": {k: with_any | some k, ids in names; with_any := ids | name_any},
	"nameGlobs": {k: with_any | some k, ids in name_globs; with_any := ids | name_any},
	"labelAny": label_any,
	"labelKV": {k: {v: with_any | some v, ids in vs; with_any := ids | label_any} | some k, vs in label_kv},
	"labelKey": {k: with_any | some k, ids in label_key; with_any := ids | label_any},
	"tags": tags,
	"tagGlobs": tag_globs,
	"criteria": object.union({"*": no_criteria, "u": unscanned, "m": malicious}, findings),
	"findingKeys": finding_keys,
	"allow": action(3),
	"block": action(2),
	"meta": meta,
	"reasons": reasons,
	"failOpen": config.failOpen,
}
