package workload

import "github.com/imagegate/imagegate/internal/jsonscan"

// The JSON names of the reduced types (object.go), for the one-pass reader.
var (
	objectKeys    = []string{"kind", "metadata", "spec"}
	metaKeys      = []string{"name", "generateName", "namespace", "labels"}
	templateKeys  = []string{"metadata", "spec"}
	podSpecKeys   = []string{"serviceAccountName", "imagePullSecrets", "containers", "initContainers", "ephemeralContainers"}
	containerKeys = []string{"name", "image"}
	localRefKeys  = []string{"name"}
	cronJobKeys   = []string{"jobTemplate"}
	jobSpecKeys   = []string{"spec"}
	controlKeys   = []string{"template"}
)

// scanAs is DecodeAs in one pass over raw (admission decodes every pod, and
// encoding/json validates and walks the bytes of a nested object once per
// level it is decoded at). ok is false for anything the one-pass reader
// leaves to encoding/json (see internal/jsonscan), including every object
// DecodeAs refuses, so that DecodeAs then decides as it always did.
func scanAs(kind string, raw []byte) (*Object, bool) {
	s := jsonscan.New(raw)
	obj := ScanAs(s, kind)
	if !s.End() {
		return nil, false
	}
	return obj, true
}

// ScanAs is DecodeAs reading the object at s's position, for a reader of a
// document holding it (an AdmissionReview). Where DecodeAs might decide
// otherwise than it reads, it fails the scan (see internal/jsonscan).
func ScanAs(s *jsonscan.Scanner, kind string) *Object {
	if !IsWorkload(kind) {
		s.Fail()
		return nil
	}
	var m meta
	var t podTemplate
	var hasSpec bool
	s.Fields(objectKeys, func(i int) {
		switch i {
		case 0:
			if k := s.Bytes(); len(k) > 0 && string(k) != kind {
				s.Fail() // DecodeAs's error
			}
		case 1:
			scanMeta(s, &m)
		case 2:
			hasSpec = true
			scanSpec(s, kind, &t)
		}
	})
	if !hasSpec {
		s.Fail()
	}
	if s.Failed() {
		return nil
	}
	if kind == "Pod" {
		t.Metadata = m
	}
	return build(kind, m, t)
}

// scanSpec reads the spec of an object of kind into its pod (template).
func scanSpec(s *jsonscan.Scanner, kind string, t *podTemplate) {
	switch kind {
	case "Pod":
		scanPodSpec(s, &t.Spec)
	case "CronJob":
		s.Fields(cronJobKeys, func(int) {
			s.Fields(jobSpecKeys, func(int) {
				s.Fields(controlKeys, func(int) { scanTemplate(s, t) })
			})
		})
	default:
		s.Fields(controlKeys, func(int) { scanTemplate(s, t) })
	}
}

func scanTemplate(s *jsonscan.Scanner, t *podTemplate) {
	s.Fields(templateKeys, func(i int) {
		if i == 0 {
			scanMeta(s, &t.Metadata)
		} else {
			scanPodSpec(s, &t.Spec)
		}
	})
}

func scanMeta(s *jsonscan.Scanner, m *meta) {
	s.Fields(metaKeys, func(i int) {
		switch i {
		case 0:
			m.Name = s.String()
		case 1:
			m.GenerateName = s.String()
		case 2:
			m.Namespace = s.String()
		case 3:
			m.Labels = map[string]string{}
			s.Object(nil, func(key []byte) { m.Labels[string(key)] = s.String() })
		}
	})
}

func scanPodSpec(s *jsonscan.Scanner, p *podSpec) {
	s.Fields(podSpecKeys, func(i int) {
		switch i {
		case 0:
			p.ServiceAccountName = s.String()
		case 1:
			s.Array(func() {
				var r localRef
				s.Fields(localRefKeys, func(int) { r.Name = s.String() })
				p.ImagePullSecrets = append(p.ImagePullSecrets, r)
			})
		case 2:
			p.Containers = scanContainers(s)
		case 3:
			p.InitContainers = scanContainers(s)
		case 4:
			p.EphemeralContainers = scanContainers(s)
		}
	})
}

func scanContainers(s *jsonscan.Scanner) []container {
	var cs []container
	s.Array(func() {
		var c container
		s.Fields(containerKeys, func(i int) {
			if i == 0 {
				c.Name = s.String()
			} else {
				c.Image = s.String()
			}
		})
		cs = append(cs, c)
	})
	return cs
}
