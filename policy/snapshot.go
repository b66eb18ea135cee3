package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Snapshot is an immutable, validated set of policy objects. Its accessors
// return objects that callers must treat as read-only.
type Snapshot struct {
	attestors  map[string]*Attestor
	policies   []*BinarySecurityPolicy
	strategies []*OpaStrategy
	globs      map[string]*Glob
	digest     string
}

// Attestor returns the named attestor.
func (s *Snapshot) Attestor(name string) (*Attestor, bool) {
	a, ok := s.attestors[name]
	return a, ok
}

// Attestors returns every attestor, sorted by name.
func (s *Snapshot) Attestors() []*Attestor {
	out := make([]*Attestor, 0, len(s.attestors))
	for _, a := range s.attestors {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metadata.Name < out[j].Metadata.Name })
	return out
}

// Policies returns every BinarySecurityPolicy, sorted by name.
func (s *Snapshot) Policies() []*BinarySecurityPolicy {
	return append([]*BinarySecurityPolicy(nil), s.policies...)
}

// Strategies returns every OpaStrategy, sorted by strategyId.
func (s *Snapshot) Strategies() []*OpaStrategy { return append([]*OpaStrategy(nil), s.strategies...) }

// Glob returns the compiled form of an imageName, whiteList or images pattern of this
// snapshot, so matching never compiles on the request path.
func (s *Snapshot) Glob(pattern string) (*Glob, bool) {
	g, ok := s.globs[pattern]
	return g, ok
}

// Digest identifies the snapshot's content (sha256 of its canonical JSON).
func (s *Snapshot) Digest() string { return s.digest }

// NewSnapshot validates objects, each on its own and as a set, and freezes
// them. Any error rejects the whole set.
func NewSnapshot(objs ...Object) (*Snapshot, error) {
	ds := make([]decoded, len(objs))
	for i, o := range objs {
		ds[i] = decoded{obj: o}
	}
	return build(ds)
}

// LoadDir loads every .yaml, .yml and .json file under dir (recursively;
// hidden files and directories are skipped), or a single file when dir is one.
func LoadDir(dir string) (*Snapshot, error) {
	files, err := ReadFiles(dir)
	if err != nil {
		return nil, err
	}
	return LoadFiles(files)
}

// ListFiles lists what LoadDir loads: the .yaml, .yml and .json files under
// root (root itself when it is a file), skipping hidden files and
// directories, sorted.
func ListFiles(root string) ([]string, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	if !info.IsDir() {
		return []string{root}, nil
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := d.Name()
		if path != root && strings.HasPrefix(base, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(base)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, path)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	sort.Strings(files)
	return files, nil
}

func build(ds []decoded) (*Snapshot, error) {
	var errs Errors
	report := func(d decoded, path, msg string) {
		line := d.src.line
		if l, ok := d.src.lines[path]; ok {
			line = l
		} else if l, ok := d.src.lines[strings.SplitN(path, "[", 2)[0]]; ok {
			line = l
		}
		errs = append(errs, &FieldError{File: d.src.file, Line: line, Kind: d.obj.kind(), Name: d.obj.name(), Path: path, Msg: msg})
	}
	s := &Snapshot{attestors: map[string]*Attestor{}, globs: map[string]*Glob{}}
	first := map[string]decoded{}
	ids := map[int64]decoded{}
	for _, d := range ds {
		var p problems
		switch o := d.obj.(type) {
		case *Attestor:
			o.validate(&p)
			s.attestors[o.Metadata.Name] = o
		case *BinarySecurityPolicy:
			o.validate(&p)
			s.policies = append(s.policies, o)
		case *OpaStrategy:
			o.validate(&p)
			s.strategies = append(s.strategies, o)
			if prev, dup := ids[o.Spec.StrategyID]; dup && o.Spec.StrategyID > 0 {
				p.add("spec.strategyId", "%d is already used by OpaStrategy %s%s", o.Spec.StrategyID, prev.obj.name(), where(prev))
			} else {
				ids[o.Spec.StrategyID] = d
			}
		default:
			return nil, fmt.Errorf("policy: unsupported object %T", d.obj)
		}
		key := d.obj.kind() + "/" + d.obj.name()
		if prev, dup := first[key]; dup && d.obj.name() != "" {
			p.add("metadata.name", "%s %q is defined twice (first%s)", d.obj.kind(), d.obj.name(), where(prev))
		} else {
			first[key] = d
		}
		for _, pr := range p {
			report(d, pr.path, pr.msg)
		}
	}
	for _, d := range ds {
		bp, ok := d.obj.(*BinarySecurityPolicy)
		if !ok {
			continue
		}
		for i, name := range bp.Spec.Policy.RequiredAttestors {
			if _, known := s.attestors[name]; !known && name != "" {
				report(d, fmt.Sprintf("spec.policy.requiredAttestors[%d]", i), fmt.Sprintf("unknown attestor %q (no Attestor object has that name)", name))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	for _, o := range s.strategies {
		for _, pat := range append(append([]string(nil), o.Spec.ImageName...), o.Spec.WhiteList...) {
			g, _ := CompileGlob(pat) // validated above
			s.globs[pat] = g
		}
	}
	for _, bp := range s.policies {
		for _, pat := range bp.Spec.Images {
			g, _ := CompileGlob(pat)
			s.globs[pat] = g
		}
	}
	sort.Slice(s.policies, func(i, j int) bool { return s.policies[i].Metadata.Name < s.policies[j].Metadata.Name })
	sort.Slice(s.strategies, func(i, j int) bool { return s.strategies[i].Spec.StrategyID < s.strategies[j].Spec.StrategyID })
	s.digest = digest(s)
	return s, nil
}

func where(d decoded) string {
	if d.src.file == "" {
		return ""
	}
	return fmt.Sprintf(" in %s:%d", d.src.file, d.src.line)
}

func digest(s *Snapshot) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, a := range s.Attestors() {
		_ = enc.Encode(a)
	}
	for _, p := range s.policies {
		_ = enc.Encode(p)
	}
	for _, o := range s.strategies {
		_ = enc.Encode(o)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
