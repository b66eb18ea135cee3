# Request-time half of the decision (docs/semantics.md). It reads the snapshot's
# index (built by build.rego) and the request's facts, and combines
# strategy-id sets, so its cost follows the strategies that could hit an
# image, not the number configured; the common case (an image no strategy can
# hit and no policy requires a signature of) takes a fast path. The engine
# executes this module as compiled by OPA's planner (see plan.go); tests hold
# that to OPA's own evaluation of it.
#
# The engine resolves the request's keys against the index before evaluation
# (see keys.go) and passes the strategy-id sets they select:
#   applicable   (per request) strategies whose scopes apply in the namespace;
#   policies     (per request) BinarySecurityPolicies in force in the namespace;
#   policyIds    (per image, only when policies is not empty) the policies
#                whose images globs match the image's name, and those
#                without images globs;
#   labelIds     (per request) strategies the pod's labels target: those with
#                a label entry the pod meets and those without label entries;
#   criteriaIds  strategies whose criteria the image meets: "*" (rules without
#                criteria), "u" (unScanedImage: no scan result, or only one
#                older than --max-scan-age), "m" (maliciousImage: the scan
#                marks it malicious, or it has a MaliciousFile finding) and
#                the finding keys "l:<category>|<level>|<class>" and
#                "i:<category>|<id>|<class>" (class "*" too);
#   nameIds      strategies the image's name targets: those with an imageName
#                entry matching the last path segment, the repository path or
#                the full name (globs too), and those without imageName entries;
#   exemptIds    strategies whose whiteList matches the tag (an image written
#                by digest alone has no tag).
# criteria maps the image's criterion keys to the positions of the findings
# behind them, and texts holds those findings' display text by position;
# detail holds what only messages read (errors and unverifiable attestors,
# the scan note), and invalid is there only for an invalid image reference.
package imagegate.decision

# The index comes with every request as input.index: the same term each
# time, never copied.
import input.index as idx

result := {
	"allowed": count([1 | some d in images; denies[d.action]]) == 0,
	"images": images,
}

denies := {"block": true, "unsigned": true}

# A hit needs the criteria, the scope, the imageName and label targets (a
# strategy without entries targets every image), and no whiteList exemption.
# An image no strategy hits and no required attestor is missing from takes
# the fast path.
images := [decide(i, img, hits) |
	some i, img in input.images
	hits := (((img.criteriaIds & input.applicable) & img.nameIds) & input.labelIds) - img.exemptIds
]

decide(i, img, hits) := d if {
	img.invalid != ""
	line := sprintf("image %q is not a valid image reference: %s", [img.ref, img.invalid])
	d := {"action": "block", "strategies": [], "missing": [], "reasons": [line], "violations": [line], "warnings": [], "findings": []}
} else := passed if {
	count(hits) == 0
	count(all_required(img) - img.attestors) == 0
} else := full(i, img, hits)

passed := {"action": "pass", "strategies": [], "missing": [], "reasons": [], "violations": [], "warnings": [], "findings": []}

# One pass over the hits builds every message line; violations and warnings
# reuse it instead of filtering the hits again.
full(i, img, hits) := d if {
	ids := sort(hits)
	verdict := strategy_verdict(hits)
	sig := signature(img)
	subject := sprintf("image %q ", [img.ref])
	lines := [line |
		some id in ids
		m := idx.meta[id]
		line := concat("", [subject, m.text, why(i, m.reason), m.suffix[verdict]])
	]
	out := verdict_lines(verdict, hits, ids, lines)
	d := {
		"action": final_action(verdict, sig.missing),
		"strategies": ids,
		"missing": sig.missing,
		"reasons": array.concat(array.concat(sig.unsigned, sig.warned), lines),
		"violations": array.concat(sig.unsigned, out[0]),
		"warnings": array.concat(array.concat(sig.excused, sig.warned), out[1]),
		"findings": hit_findings(img, hits),
	}
}

# --- strategy gate -------------------------------------------------------------

# allow (an explicit exception) wins over block, block over alert.
strategy_verdict(hits) := "allow" if {
	count(hits & idx.allow) > 0
} else := "block" if {
	count(hits & idx.block) > 0
} else := "alert" if {
	count(hits) > 0
} else := "pass"

# No strategy can cancel the signature gate.
final_action(verdict, missing) := "unsigned" if count(missing) > 0 else := verdict

# --- messages --------------------------------------------------------------------

# [violations, warnings] among the strategy lines: with a block verdict the
# blocking strategies' lines deny (the others are overridden alerts); an
# alert verdict means every hit alerts.
verdict_lines("alert", _, _, lines) := [[], lines]

verdict_lines("block", hits, ids, lines) := [lines, []] if {
	count(hits - idx.block) == 0
} else := [[lines[n] | some n, id in ids; id in idx.block], []]

verdict_lines(verdict, _, _, _) := [[], []] if {
	verdict != "alert"
	verdict != "block"
}

# Strategies with the same criteria (build.rego's reasons) explain a hit the
# same way, so each image computes one text per distinct reason; function
# results are cached per (image, reason).
why(i, r) := concat(", ", reasons) if {
	img := input.images[i]
	rs := idx.reasons[r]
	flagged := [flag_text(img, f) | some f in rs.flags; img.criteria[f]]
	reasons := array.concat(flagged, found(img, rs.keys))
	count(reasons) > 0
} else := "matched by image name or label"

found(img, keys) := [] if {
	count(keys) == 0
} else := [img.texts[n] | some n in sort({n | some k in keys; some n in object.get(img.criteria, k, [])})]

# The findings behind the hits (positions in the image's scan findings), once
# each, for audit events: those of every finding key that selects a hit.
hit_findings(img, hits) := sort({n |
	some k, ns in img.criteria
	count(ns) > 0
	count(idx.criteria[k] & hits) > 0
	some n in ns
})

# A note says why scan evidence was set aside (e.g. an attestation signed by
# the wrong attestor).
flag_text(img, "u") := "unscanned" if img.detail.scanNote == "" else := sprintf("unscanned (%s)", [img.detail.scanNote])

flag_text(_, "m") := "malicious image"

# --- signature gate --------------------------------------------------------------

# The BinarySecurityPolicies that govern the image: in force in the
# namespace and naming the image in images (or naming no images).
governing(img) := input.policies & img.policyIds

governing(img) := set() if not img.policyIds

# Attestors the governing policies require: all of them, those of enforce
# policies (required) and those only warn policies require (an attestor an
# enforce policy requires too is enforced: enforce wins).
all_required(img) := {a | some p in governing(img); some a in idx.policyAttestors[p]}

required(img) := {a | some p in governing(img) - idx.warnPolicies; some a in idx.policyAttestors[p]}

warned(img) := all_required(img) - required(img)

# The signature gate's part of an image's decision: the missing attestors,
# their lines, the warnings for attestors excused by configuration, and
# those for attestors only warn-mode policies require.
signature(img) := signed if {
	count(all_required(img) - img.attestors) == 0
} else := {"missing": missing, "unsigned": unsigned, "excused": excused_lines(img), "warned": warn_lines(img)} if {
	missing := sort((required(img) - img.attestors) - excused(img))
	unsigned := [sprintf("image %q is not signed by attestor %q: %s", [img.ref, a, reason(img, a)]) | some a in missing]
}

signed := {"missing": [], "unsigned": [], "excused": [], "warned": []}

# A warn-mode policy that would deny admits with one line per policy and
# missing attestor.
warn_lines(img) := [sprintf("image %q would be denied by BinarySecurityPolicy %q (mode warn): not signed by attestor %q: %s", [img.ref, p, a, reason(img, a)]) |
	some a in sort(warned(img) - img.attestors)
	some p in sort(governing(img) & idx.warnPolicies)
	a in idx.policyAttestors[p]
]

# With --on-verification-error=allow, an attestor that could not be checked
# (registry unreachable, timeout) does not deny; it warns.
excused(img) := img.detail.unverifiable if idx.failOpen else := set()

excused_lines(img) := [] if {
	not idx.failOpen
} else := [sprintf("image %q: attestor %q could not be verified (%s); admitted because verification errors are allowed", [img.ref, a, reason(img, a)]) |
	some a in sort((required(img) - img.attestors) & excused(img))
]

reason(img, a) := object.get(img.detail.errors, a, "no verified signature")
