# Request-time half of the decision (DESIGN.md §2). It reads the snapshot's
# index (data.imagegate.index.value, built by build.rego) and the request's facts
# (input), and combines strategy-id sets, so its cost follows the number of
# strategies that could hit an image, not the number configured.
package imagegate.decision

idx := data.imagegate.index.value

applicable := object.get(idx.applicable, input.namespace, idx.applicableDefault)

required := object.get(idx.required, input.namespace, idx.requiredDefault)

# Strategies whose label list the pod satisfies (independent of the image).
label_matched := union({ids |
	some k, v in input.labels
	ids := object.get(idx.labelKV, [k, v], set())
}) | union({ids |
	some k, _ in input.labels
	ids := object.get(idx.labelKey, k, set())
})

result := {
	"allowed": count({i | some i, d in images; d.action in {"block", "unsigned"}}) == 0,
	"images": images,
	"violations": [line | some d in images; some line in d.violations],
	"warnings": [line | some d in images; some line in d.warnings],
}

images := [decide(img) | some img in input.images]

decide(img) := d if {
	img.invalid != ""
	line := sprintf("image %q is not a valid image reference: %s", [img.ref, img.invalid])
	d := {"action": "block", "strategies": [], "missing": [], "reasons": [line], "violations": [line], "warnings": []}
} else := d if {
	fh := [finding_hits(f) | some f in img.findings]
	hits := strategy_hits(img, fh)
	verdict := strategy_verdict(hits)
	missing := {a | some a in required; not a in img.attestors; not excused(img, a)}
	unsigned := [unsigned_line(img, a) | some a in sort(missing)]
	lines := [l | some id in sort(hits); l := hit_line(img, fh, id, verdict)]
	d := {
		"action": final_action(verdict, missing),
		"strategies": sort(hits),
		"missing": sort(missing),
		"reasons": array.concat(unsigned, lines),
		"violations": array.concat(unsigned, lines_of(img, fh, hits, verdict, "block")),
		"warnings": array.concat(excused_lines(img), lines_of(img, fh, hits, verdict, "alert")),
	}
}

# --- strategy gate -------------------------------------------------------------

strategy_hits(img, fh) := hits if {
	raw := ((idx.noCriteria | unscanned_hits(img)) | malicious_hits(img)) | union({s | some s in fh})
	candidates := raw & applicable
	named := (candidates & idx.nameAny) | (candidates & name_matched(img))
	labelled := (named & idx.labelAny) | (named & label_matched)
	hits := labelled - exempt(img)
}

# imageName entries: exact names by lookup, globs against every form of the
# image's name (last segment, repository path, full name).
name_matched(img) := union({ids | some n in img.names; ids := object.get(idx.nameExact, n, set())}) | union({ids |
	some pattern, ids in idx.nameGlobs
	imagegate.glob_match_any(pattern, img.names)
})

exempt(img) := set() if {
	img.tag == ""
} else := object.get(idx.tagExact, img.tag, set()) | union({ids |
	some pattern, ids in idx.tagGlobs
	imagegate.glob_match_any(pattern, [img.tag])
})

unscanned(img) if not img.scanned

unscanned(img) if {
	idx.maxScanAgeNs > 0
	img.scannedAtNs > 0
	input.nowNs - img.scannedAtNs > idx.maxScanAgeNs
}

unscanned_hits(img) := idx.unscanned if unscanned(img) else := set()

# Findings and the malicious mark of a scan too old to count as "scanned" still
# hold: age only decides unScanedImage.
malicious(img) if img.malicious

malicious(img) if {
	some f in img.findings
	f.category == "MaliciousFile"
}

malicious_hits(img) := idx.malicious if malicious(img) else := set()

# A finding hits the strategies that list its level or its id for its
# category, and, for Vul with riskClass set, its class.
finding_hits(f) := by_level_or_item & by_class if {
	by_level_or_item := object.get(idx.levels, [f.category, f.level], set()) | object.get(idx.items, [f.category, f.id], set())
	by_class := object.get(idx.classAny, f.category, set()) | class_hits(f)
}

class_hits(f) := object.get(idx.classes, f.class, set()) if f.category == "Vul" else := set()

# allow (an explicit exception) wins over block, block over alert.
strategy_verdict(hits) := "allow" if {
	count(hits & idx.allow) > 0
} else := "block" if {
	count(hits & idx.block) > 0
} else := "alert" if {
	count(hits & idx.alert) > 0
} else := "pass"

# No strategy can cancel the signature gate.
final_action(_, missing) := "unsigned" if count(missing) > 0

final_action(verdict, missing) := verdict if count(missing) == 0

lines_of(img, fh, hits, verdict, action) := [l |
	verdict == action
	some id in sort(hits)
	idx.meta[id].action == action
	l := hit_line(img, fh, id, verdict)
]

verbs := {"alert": "alerted", "block": "blocked", "allow": "allowed"}

hit_line(img, fh, id, verdict) := line if {
	m := idx.meta[id]
	base := sprintf("image %q %s by strategy %d %q: %s", [img.ref, verbs[m.action], id, m.name, concat(", ", why(img, fh, id))])
	line := overridden(base, m.action, verdict)
}

overridden(line, action, verdict) := line if action == verdict

overridden(line, action, verdict) := sprintf("%s (overridden by %s)", [line, verdict]) if action != verdict

why(img, fh, id) := reasons if {
	found := [sprintf("%s %s (%s)", [f.category, f.id, f.level]) |
		some i, f in img.findings
		id in fh[i]
	]
	reasons := array.concat(array.concat(unscanned_why(img, id), malicious_why(img, id)), found)
	count(reasons) > 0
} else := ["matched by image name or label"]

unscanned_why(img, id) := ["unscanned"] if {
	unscanned(img)
	id in idx.unscanned
} else := []

malicious_why(img, id) := ["malicious image"] if {
	malicious(img)
	id in idx.malicious
} else := []

# --- signature gate --------------------------------------------------------------

# With --on-verification-error=allow, an attestor that could not be checked
# (registry unreachable, timeout) does not deny; it warns.
excused(img, a) if {
	idx.failOpen
	a in img.unverifiable
}

excused_lines(img) := [sprintf("image %q: attestor %q could not be verified (%s); admitted because verification errors are allowed", [img.ref, a, reason(img, a)]) |
	some a in sort(required)
	not a in img.attestors
	excused(img, a)
]

unsigned_line(img, a) := sprintf("image %q is not signed by attestor %q: %s", [img.ref, a, reason(img, a)])

reason(img, a) := object.get(img.errors, a, "no verified signature")
