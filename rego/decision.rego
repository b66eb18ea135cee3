# Request-time half of the decision (DESIGN.md §2). It reads the snapshot's
# index (data.imagegate.index, built by build.rego) and the request's
# facts (input), and combines strategy-id sets, so its cost follows the
# strategies that could hit an image, not the number configured. OPA spends
# about a microsecond per expression, so the common case (an image no
# strategy can hit and no policy requires a signature of) takes a fast path.
#
# The engine resolves each image's keys against the index before evaluation
# (see keys.go) and passes the strategy-id sets they select:
#   criteriaIds  strategies whose criteria the image meets: "*" (rules without
#                criteria), "u" (unScanedImage: no scan result, or only one
#                older than --max-scan-age), "m" (maliciousImage: the scan
#                marks it malicious, or it has a MaliciousFile finding) and
#                the finding keys "l:<category>|<level>|<class>" and
#                "i:<category>|<id>|<class>" (class "*" too);
#   nameIds      strategies with an imageName entry matching the last path
#                segment, the repository path or the full name (globs too);
#   exemptIds    strategies whose whiteList matches the tag (an image written
#                by digest alone has no tag).
# criteria maps the image's criterion keys to the findings behind them.
package imagegate.decision

# The index is a base document; its objects keyed by strategy id (numbers)
# or by booleans are read with object.get, since data references turn keys
# into storage path strings.
import data.imagegate.index as idx

applicable := object.get(idx.applicable, input.namespace, idx.applicableDefault)

required := object.get(idx.required, input.namespace, idx.requiredDefault)

result := {
	"allowed": count([1 | some d in images; denies[d.action]]) == 0,
	"images": images,
}

denies := {"block": true, "unsigned": true}

images := [decide(img, img.criteriaIds & applicable) | some img in input.images]

decide(img, candidates) := d if {
	img.invalid != ""
	line := sprintf("image %q is not a valid image reference: %s", [img.ref, img.invalid])
	d := {"action": "block", "strategies": [], "missing": [], "reasons": [line], "violations": [line], "warnings": [], "findings": []}
} else := passed if {
	count(candidates) == 0
	count(required - img.attestors) == 0
} else := full(img, candidates)

passed := {"action": "pass", "strategies": [], "missing": [], "reasons": [], "violations": [], "warnings": [], "findings": []}

full(img, candidates) := d if {
	ids := sort(strategy_hits(img, candidates))
	verdict := strategy_verdict(ids)
	missing := missing_attestors(img)
	unsigned := [sprintf("image %q is not signed by attestor %q: %s", [img.ref, a, reason(img, a)]) | some a in missing]
	lines := [[action, line] |
		some id in ids
		action := object.get(idx.meta, [id, "action"], "")
		line := hit_line(img, id, action, verdict)
	]
	d := {
		"action": final_action(verdict, missing),
		"strategies": ids,
		"missing": missing,
		"reasons": array.concat(unsigned, [l[1] | some l in lines]),
		"violations": array.concat(unsigned, [l[1] | verdict == "block"; some l in lines; l[0] == "block"]),
		"warnings": array.concat(excused_lines(img), [l[1] | verdict == "alert"; some l in lines; l[0] == "alert"]),
		"findings": hit_findings(img, ids),
	}
}

# --- strategy gate -------------------------------------------------------------

# A hit needs the criteria, the scope, the imageName and label targets, and
# no whiteList exemption.
strategy_hits(img, candidates) := hits if {
	named := (candidates & idx.nameAny) | (candidates & img.nameIds)
	labelled := (named & idx.labelAny) | (named & label_matched)
	hits := labelled - img.exemptIds
}

# label entries: key:value, or key for presence.
label_matched := union({ids | some _, ids in object.filter(idx.labelKey, object.keys(input.labels))}) | union({ids |
	some k, values in object.filter(idx.labelKV, object.keys(input.labels))
	ids := object.get(values, input.labels[k], set())
})

# allow (an explicit exception) wins over block, block over alert.
strategy_verdict(ids) := "allow" if {
	some id in ids
	id in idx.allow
} else := "block" if {
	some id in ids
	id in idx.block
} else := "alert" if {
	count(ids) > 0
} else := "pass"

# No strategy can cancel the signature gate.
final_action(verdict, missing) := "unsigned" if count(missing) > 0 else := verdict

# --- messages --------------------------------------------------------------------

verbs := {"alert": "alerted", "block": "blocked", "allow": "allowed"}

hit_line(img, id, action, verdict) := line if {
	action == verdict
	line := sprintf("image %q %s by strategy %d %q: %s", [img.ref, verbs[action], id, object.get(idx.meta, [id, "name"], ""), why(img, id)])
} else := sprintf("image %q %s by strategy %d %q: %s (overridden by %s)", [img.ref, verbs[action], id, object.get(idx.meta, [id, "name"], ""), why(img, id), verdict])

why(img, id) := concat(", ", reasons) if {
	found := [sprintf("%s %s (%s)", [f.category, f.id, f.level]) |
		some i in sort({i | some k in object.get(idx.findingKeys, id, set()); some i in object.get(img.criteria, k, [])})
		f := img.findings[i]
	]
	reasons := array.concat(array.concat(flag(img, "u", id, unscanned_text(img)), flag(img, "m", id, "malicious image")), found)
	count(reasons) > 0
} else := "matched by image name or label"

# The findings behind the hits, once each, for audit events.
hit_findings(img, ids) := [img.findings[i] |
	some i in sort({i | some id in ids; some k in object.get(idx.findingKeys, id, set()); some i in object.get(img.criteria, k, [])})
]

# A note says why scan evidence was set aside (e.g. an attestation signed by
# the wrong attestor).
unscanned_text(img) := "unscanned" if img.scanNote == "" else := sprintf("unscanned (%s)", [img.scanNote])

flag(img, key, id, text) := [text] if {
	img.criteria[key]
	id in idx.criteria[key]
} else := []

# --- signature gate --------------------------------------------------------------

missing_attestors(img) := [] if {
	count(required) == 0
} else := sort((required - img.attestors) - excused(img))

# With --on-verification-error=allow, an attestor that could not be checked
# (registry unreachable, timeout) does not deny; it warns.
excused(img) := img.unverifiable if idx.failOpen else := set()

excused_lines(img) := [] if {
	not idx.failOpen
} else := [sprintf("image %q: attestor %q could not be verified (%s); admitted because verification errors are allowed", [img.ref, a, reason(img, a)]) |
	some a in sort((required - img.attestors) & excused(img))
]

reason(img, a) := object.get(img.errors, a, "no verified signature")
