package check

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/imagegate/imagegate/internal/strictyaml"
	"github.com/imagegate/imagegate/policy"
	"go.yaml.in/yaml/v3"
)

// Test file identity: policies are tested like code, with the expected
// decision of each manifest written down beside them.
const (
	TestAPIVersion = "imagegate.dev/v1alpha1"
	TestKind       = "Test"
)

// TestFileNames are the names imagegate test looks for under a directory.
var TestFileNames = []string{"imagegate-test.yaml", "imagegate-test.yml"}

// Test is one document of a test file.
type Test struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	// Policies are directories or files of policy objects, relative to the
	// test file.
	Policies []string `json:"policies"`
	// Facts is a facts file, relative to the test file; without it every
	// image is unsigned and unscanned (a test never asks a registry).
	Facts string `json:"facts,omitempty"`
	// ClusterID is the cluster decided for; empty: every cluster at once.
	ClusterID string `json:"clusterId,omitempty"`
	// Resources are manifest files or directories, relative to the test file.
	Resources []string `json:"resources"`
	// Expect is the expected result per resource.
	Expect []Expectation `json:"expect"`

	File string `json:"-"` // the test file
	Line int    `json:"-"` // line of the document
	// lines maps field paths to lines, for failures that name an
	// expectation.
	lines map[string]int
}

// Expectation is the expected result of one resource.
type Expectation struct {
	// Resource is Kind/namespace/name, e.g. Deployment/prod/web.
	Resource string             `json:"resource"`
	Allowed  *bool              `json:"allowed,omitempty"`
	Images   []ImageExpectation `json:"images,omitempty"`
}

// ImageExpectation is the expected result of one image; only the fields
// given are compared, lists exactly (order aside).
type ImageExpectation struct {
	Image            string    `json:"image"`
	Action           string    `json:"action,omitempty"`
	Strategies       *[]int64  `json:"strategies,omitempty"`
	MissingAttestors *[]string `json:"missingAttestors,omitempty"`
}

// FindTestFiles lists the test files under root (root itself when it is a
// file), sorted; hidden directories are skipped.
func FindTestFiles(root string) ([]string, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{root}, nil
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		for _, n := range TestFileNames {
			if !d.IsDir() && d.Name() == n {
				files = append(files, path)
			}
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// LoadTests decodes every document of a test file, strictly: each mistake
// is a *strictyaml.FieldError with file, line and field.
func LoadTests(file string) ([]*Test, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &strictyaml.FieldError{File: file, Msg: err.Error()}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*Test
	var errs []error
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &strictyaml.FieldError{File: file, Msg: fmt.Sprintf("document %d: malformed YAML: %s", doc, strings.TrimPrefix(err.Error(), "yaml: "))}
		}
		if len(n.Content) == 0 || strictyaml.IsNull(n.Content[0]) {
			continue
		}
		t, es := decodeTest(file, n.Content[0])
		errs = append(errs, es...)
		if t != nil {
			out = append(out, t)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, &strictyaml.FieldError{File: file, Msg: "no Test in this file"}
	}
	return out, nil
}

func decodeTest(file string, n *yaml.Node) (*Test, []error) {
	res := strictyaml.Check(n, reflect.TypeOf(Test{}), "", strictyaml.Options{Scalars: true})
	var errs []error
	fail := func(path, format string, args ...any) {
		line := res.Lines[path]
		if line == 0 {
			line = n.Line
		}
		errs = append(errs, &strictyaml.FieldError{File: file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	for _, e := range res.Errors {
		e.File = file
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	t := &Test{File: file, Line: n.Line, lines: res.Lines}
	if err := strictyaml.Decode(n, t); err != nil {
		return nil, []error{&strictyaml.FieldError{File: file, Line: n.Line, Msg: err.Error()}}
	}
	if t.APIVersion != TestAPIVersion {
		fail("apiVersion", "expected %q, got %q", TestAPIVersion, t.APIVersion)
	}
	if t.Kind != TestKind {
		fail("kind", "expected %q, got %q", TestKind, t.Kind)
	}
	if len(t.Policies) == 0 {
		fail("policies", "is required: the policy directories or files under test")
	}
	if len(t.Resources) == 0 {
		fail("resources", "is required: the manifests to decide")
	}
	if len(t.Expect) == 0 {
		fail("expect", "is required: what each resource's decision should be")
	}
	for i, e := range t.Expect {
		p := fmt.Sprintf("expect[%d]", i)
		if _, _, _, ok := splitResource(e.Resource); !ok {
			fail(p+".resource", "%q: expected Kind/namespace/name, e.g. Deployment/prod/web", e.Resource)
		}
		if e.Allowed == nil && len(e.Images) == 0 {
			fail(p, "expects nothing: give allowed, images or both")
		}
		for j, img := range e.Images {
			ip := fmt.Sprintf("%s.images[%d]", p, j)
			if img.Image == "" {
				fail(ip+".image", "is required: the image as the manifest writes it")
			}
			switch img.Action {
			case "", "pass", "alert", "allow", "block", "unsigned":
			default:
				fail(ip+".action", "%q is not one of pass, alert, allow, block, unsigned", img.Action)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

func splitResource(s string) (kind, namespace, name string, ok bool) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// Rel resolves a path of the test file relative to its directory.
func (t *Test) Rel(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(t.File), p)
}

// LoadPolicies loads the test's policies as one snapshot.
func (t *Test) LoadPolicies() (*policy.Snapshot, error) {
	if len(t.Policies) == 1 {
		return policy.LoadDir(t.Rel(t.Policies[0]))
	}
	var objs []policy.Object
	for _, p := range t.Policies {
		files, err := policy.ListFiles(t.Rel(p))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			parsed, err := policy.Parse(f, data)
			if err != nil {
				return nil, err
			}
			objs = append(objs, parsed...)
		}
	}
	return policy.NewSnapshot(objs...)
}

// ExpectLine is the line of expectation i (for failure output).
func (t *Test) ExpectLine(i int) int {
	return t.lines[fmt.Sprintf("expect[%d]", i)]
}
