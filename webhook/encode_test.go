package webhook

import (
	"encoding/json"
	"testing"
)

func answerCases() []*response {
	tricky := "a\"b\\c\x00\x01\b\f\n\r\t\x1f<>&é\u2028\u2029\xff\xfe😀 \x7f/"
	return []*response{
		{UID: "u", Allowed: true},
		{UID: "u", Allowed: true, AuditAnnotations: map[string]string{AnnotationDecision: "allowed"}},
		{UID: tricky, Allowed: false, Result: &status{Code: 403, Reason: "Forbidden", Message: "imagegate denied the request:\n" + tricky},
			Warnings: []string{tricky, "w2", ""}, AuditAnnotations: map[string]string{AnnotationViolations: tricky, AnnotationDecision: "denied", tricky: ""}},
		{UID: "u", Result: &status{Message: "m"}},
		{UID: "u", Result: &status{}},
		{UID: "u", Allowed: true, PatchType: "JSONPatch", Patch: []byte(`[{"op":"replace"}]`)},
		{UID: "", Warnings: []string{}, AuditAnnotations: map[string]string{}},
	}
}

// TestAppendAnswerMatchesJSON: the answer's bytes are encoding/json's.
func TestAppendAnswerMatchesJSON(t *testing.T) {
	for _, resp := range answerCases() {
		checkAnswer(t, resp)
	}
}

func checkAnswer(t *testing.T, resp *response) {
	t.Helper()
	want, err := json.Marshal(review{APIVersion: reviewAPIVersion, Kind: reviewKind, Response: resp})
	if err != nil {
		t.Fatal(err)
	}
	if got := appendAnswer(nil, resp); string(got) != string(want) {
		t.Errorf("appendAnswer:\n%s\nencoding/json:\n%s", got, want)
	}
}

func FuzzAppendAnswer(f *testing.F) {
	f.Add("u", "m", "w", "k", "v", []byte("p"))
	f.Fuzz(func(t *testing.T, uid, msg, warning, key, value string, patch []byte) {
		checkAnswer(t, &response{UID: uid, Result: &status{Code: 400, Message: msg}, Warnings: []string{warning},
			AuditAnnotations: map[string]string{key: value, AnnotationDecision: "error"}, PatchType: "JSONPatch", Patch: patch})
	})
}
