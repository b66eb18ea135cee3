package workload

import (
	"reflect"
	"strings"
	"testing"
)

// scanCases are objects the one-pass reader must read exactly as
// encoding/json does, or leave to it.
var scanCases = []struct{ kind, json string }{
	{"Pod", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"ns","labels":{"app":"web","tier":"x"}},"spec":{"serviceAccountName":"sa","imagePullSecrets":[{"name":"a"},{"name":""},{}],"containers":[{"name":"c","image":"nginx","env":[{"name":"A","value":"\u00e9\n"}],"ports":[{"containerPort":80,"x":-1.5e3}]},{"name":"d","image":"nginx"}],"initContainers":[{"name":"i","image":"busybox:1.36"}],"ephemeralContainers":[{"name":"e","image":"debug@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}]}}`},
	{"Pod", `{"metadata":{"generateName":"g-","labels":{}},"spec":{"containers":[]}}`},
	{"Pod", ` { "kind" : "Pod" , "spec" : { "containers" : [ { "image" : "a" } ] } } `},
	{"Pod", `{"kind":"Pod","metadata":{"name":"p","Name":"q"},"spec":{"containers":[{"image":"a"}]}}`},
	{"Pod", `{"kind":"Pod","metadata":{"name":"p"},"metadata":{"namespace":"n"},"spec":{"containers":[{"image":"a"}]}}`},
	{"Pod", `{"kind":"Pod","spec":{"containers":[{"image":"a\u0062"}]}}`},
	{"Pod", `{"kind":"Pod","spec":{"containers":[{"image":"a"}]}} x`},
	{"Pod", `{"kind":"Pod","spec":null}`},
	{"Pod", `{"kind":"Pod"}`},
	{"Pod", `{"kind":"Deployment","spec":{"containers":[{"image":"a"}]}}`},
	{"Pod", `{"kind":"Pod","spec":{"containers":[{"image":"a"}],"x":[1,2,{"\u0041":"\ud83d\ude00"}]}}`},
	{"Pod", `{"kind":"Pod","spec":{"containers":[{"image":"a"}],"x":01}}`},
	{"Pod", `{"kind":"Pod","spec":{"containers":[{"image":"a"}],"x":"\x"}}`},
	{"Pod", `{"kind":"Pod","spec":{"containers":[{"image":5}]}}`},
	{"Pod", `{"kind":"Pod","spec":{"containers":null}}`},
	{"Pod", "{\"kind\":\"Pod\",\"spec\":{\"containers\":[{\"image\":\"a\xff\"}]}}"},
	{"Pod", "{\"kind\":\"Pod\",\"spec\":{\"containers\":[{\"image\":\"a\"}],\"x\":\"\xff\"}}"},
	{"Pod", `{"kind":"Pod","metadata":{"labels":{"a":"1","a":"2"}},"spec":{"containers":[{"image":"a"}]}}`},
	{"Pod", `{"kind":"Pod","metadata":{"labels":null},"spec":{"containers":[{"image":"a"}]}}`},
	{"Deployment", `{"kind":"Deployment","metadata":{"name":"d","labels":{"x":"y"}},"spec":{"replicas":3,"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx:1.25"}]}}}}`},
	{"Deployment", `{"kind":"Deployment","spec":{"replicas":3}}`},
	{"Deployment", `{"kind":"Deployment","spec":{"template":{"spec":{"containers":[{"image":"a"}]}},"Template":{}}}`},
	{"CronJob", `{"kind":"CronJob","metadata":{"name":"c"},"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"image":"busybox"}]}}}}}}`},
	{"Job", `{"spec":{"template":{"spec":{"initContainers":[{"image":"x"}],"containers":[{"image":"x"},{"image":"y"}]}}}}`},
	{"Service", `{"kind":"Service","spec":{}}`},
	{"Pod", `{"kind":"Pod","spec":{"containers":[{"image":"a"}],"deep":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}`},
}

// TestScanAgreesWithJSON: whatever the one-pass reader returns is what
// encoding/json decodes, and the reader leaves to it whatever encoding/json
// refuses.
func TestScanAgreesWithJSON(t *testing.T) {
	read := 0
	for _, tc := range scanCases {
		if checkScan(t, tc.kind, []byte(tc.json)) {
			read++
		}
	}
	if read < 8 {
		t.Errorf("the one-pass reader read only %d of %d cases", read, len(scanCases))
	}
}

func checkScan(t *testing.T, kind string, raw []byte) bool {
	t.Helper()
	got, ok := scanAs(kind, raw)
	want, err := decodeAs(kind, raw)
	if !ok {
		return false
	}
	if err != nil {
		t.Errorf("%s %s: read in one pass, but encoding/json refuses it: %v", kind, short(raw), err)
		return true
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s %s:\none pass      %+v\nencoding/json %+v", kind, short(raw), got, want)
	}
	return true
}

func short(b []byte) string {
	if s := string(b); len(s) < 120 {
		return s
	}
	return strings.TrimSpace(string(b[:120])) + "…"
}

func FuzzScanAs(f *testing.F) {
	for _, tc := range scanCases {
		f.Add(tc.kind, []byte(tc.json))
	}
	f.Fuzz(func(t *testing.T, kind string, raw []byte) {
		checkScan(t, kind, raw)
	})
}

// TestImagesDeduplicated: each distinct image once, in order, whether the
// pod has a few images or many.
func TestImagesDeduplicated(t *testing.T) {
	for _, n := range []int{3, 40} {
		var cs []container
		for i := range n {
			cs = append(cs, container{Name: "c", Image: "img" + string(rune('a'+i%20))})
		}
		imgs := images(podSpec{Containers: cs, InitContainers: cs[:2]})
		if len(imgs) != min(n, 20) {
			t.Errorf("%d containers: %d images", n, len(imgs))
		}
		for i, img := range imgs {
			if img.Ref != "img"+string(rune('a'+i)) || img.Source != Container {
				t.Errorf("%d containers: image %d is %s from %s", n, i, img.Ref, img.Source)
			}
		}
	}
}

// TestParseCached: the cache answers what ParseImage does.
func TestParseCached(t *testing.T) {
	for _, ref := range []string{"nginx", "registry.example.com/team/app:1.0", "a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "BAD"} {
		for range 2 {
			if got, want := parseCached(ref), ParseImage(ref); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %+v, ParseImage %+v", ref, got, want)
			}
		}
	}
}
